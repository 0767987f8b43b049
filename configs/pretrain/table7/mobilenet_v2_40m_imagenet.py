# ImageNet pretraining of the backbone of
# configs/table7/lighthead_mobilenet_v2_40m.py.
_base_ = '../_base_/table7_imagenet.py'

model = dict(backbone=dict(name='mobilenet_v2', level=40, out_indices=(3,)))
