# ShuffleNet V2 2.0x on ImageNet (paper Table 5); schedule in _base_/imagenet_sgd.py.
# downsample_split stays 'official', the default of configs/lighthead_sn2.py.
_base_ = './_base_/imagenet_sgd.py'

# The official 2.0x network has dropout 0.2 before its classifier.
model = dict(backbone=dict(type='ShuffleNetV2', widen_factor=2.0), dropout=0.2)
