# Light-Head R-CNN with ShuffleNet V2* 1.0x: an extra 3x3 depthwise conv (BN, no ReLU)
# before the first pointwise conv of every unit's main branch; the downsampling units'
# projection branch is left as it is (sn2_det.models.backbones.ShuffleNetV2).
# No public ImageNet weights exist: pretrain them (docs/table7.md), on the
# ImageNet mean/std RGB input of configs/pretrain:
#   tools/dist_train.sh configs/pretrain/shufflenet_v2_star_1.0x_imagenet.py 8
#   python tools/extract_backbone.py \
#       work_dirs/shufflenet_v2_star_1.0x_imagenet/epoch_240.pth \
#       checkpoints/shufflenet_v2_star_1.0x_imagenet.pth
_base_ = './lighthead_sn2.py'

model = dict(
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True),
    backbone=dict(
        star=True, star_act=False, star_proj=False,
        init_cfg=dict(checkpoint='checkpoints/shufflenet_v2_star_1.0x_imagenet.pth')))
