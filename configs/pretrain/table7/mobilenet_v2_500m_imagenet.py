# ImageNet pretraining of the backbone of
# configs/table7/lighthead_mobilenet_v2_500m.py.
_base_ = '../_base_/table7_imagenet.py'

model = dict(backbone=dict(name='mobilenet_v2', level=500, out_indices=(3,)))
