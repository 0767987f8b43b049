# ImageNet pretraining of the backbone of
# configs/table7/lighthead_mobilenet_v2_140m.py.
_base_ = '../_base_/table7_imagenet.py'

model = dict(backbone=dict(name='mobilenet_v2', level=140, out_indices=(3,)))
