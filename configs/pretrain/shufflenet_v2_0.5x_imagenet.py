# ShuffleNet V2 0.5x on ImageNet (paper Table 5); schedule in _base_/imagenet_sgd.py.
# downsample_split stays 'official', the default of configs/lighthead_sn2.py.
_base_ = './_base_/imagenet_sgd.py'

model = dict(backbone=dict(type='ShuffleNetV2', widen_factor=0.5))
