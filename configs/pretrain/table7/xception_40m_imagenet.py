# ImageNet pretraining of the backbone of
# configs/table7/lighthead_xception_40m.py.
_base_ = '../_base_/table7_imagenet.py'

model = dict(backbone=dict(name='xception', level=40))
