# ImageNet pretraining of the backbone of
# configs/table7/lighthead_shufflenet_v1_500m.py.
_base_ = '../_base_/table7_imagenet.py'

model = dict(backbone=dict(name='shufflenet_v1', level=500))
