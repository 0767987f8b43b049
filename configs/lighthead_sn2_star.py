# Light-Head R-CNN with ShuffleNet V2* 1.0x: an extra 3x3 depthwise conv (BN, no ReLU)
# before the first pointwise conv of every unit's main branch; the downsampling units'
# projection branch is left as it is (sn2_det.models.backbones.ShuffleNetV2).
_base_ = './lighthead_sn2.py'

model = dict(backbone=dict(star=True, star_act=False, star_proj=False))
