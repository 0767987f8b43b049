# mmdet's YOLOX-nano with its depthwise CSPDarknet swapped for ShuffleNet V2 0.5x, the
# width of nano's 64/128/256 channels: stages 2-4 (strides 8/16/32, 48/96/192
# channels) feed the depthwise PAFPN, which keeps its 64 output channels. Otherwise as
# configs/swap/yolox_tiny_sn2-1.0x_8xb8-300e_coco.py (the weights' RGB normalisation,
# mmdet's pipeline, mode switch, BN sync and EMA).
_base_ = ['mmdet::yolox/yolox_nano_8xb8-300e_coco.py', '../_base_/swap_sn2.py']

model = dict(
    data_preprocessor=_base_.imagenet_rgb,
    # python tools/convert_weights.py shufflenetv2_x0.5-f707e7126e.pth \
    #     checkpoints/shufflenet_v2_0.5x_tv.pth
    backbone=dict(_base_.sn2_backbone, widen_factor=0.5,
                  init_cfg=dict(type='Pretrained',
                                checkpoint='checkpoints/shufflenet_v2_0.5x_tv.pth')),
    neck=dict(in_channels=[48, 96, 192]))
custom_hooks = _base_.custom_hooks + [dict(type='PretrainedBackboneCheckHook')]
