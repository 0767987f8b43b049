# configs/lighthead_sn2.py fine-tuned from torchvision's (or mmpretrain's) ImageNet
# ShuffleNet V2 1.0x weights: their downsampling units split channels evenly and
# they were trained on RGB input scaled by the ImageNet mean and std.
#   python tools/convert_weights.py shufflenetv2_x1-5666bf0f80.pth \
#       checkpoints/shufflenet_v2_1.0x_tv.pth
_base_ = './lighthead_sn2.py'

model = dict(
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True),
    backbone=dict(
        downsample_split='even',
        init_cfg=dict(checkpoint='checkpoints/shufflenet_v2_1.0x_tv.pth')))
