# ShuffleNet V2* 1.0x on ImageNet (extra 3x3 depthwise conv in every unit, paper
# Sec. 5); no public weights exist for it. The star_act / star_proj keys keep their
# defaults, those of configs/lighthead_sn2_star.py.
_base_ = './shufflenet_v2_1.0x_imagenet.py'

model = dict(backbone=dict(star=True))
