# mmdet's YOLOX-nano with its depthwise CSPDarknet swapped for ShuffleNet V2 0.5x, the
# width of nano's 64/128/256 channels: stages 2-4 (strides 8/16/32, 48/96/192
# channels) feed the depthwise PAFPN, which keeps its 64 output channels. Otherwise as
# configs/swap/yolox_tiny_sn2-1.0x_8xb8-300e_coco.py (the weights' RGB normalisation,
# mmdet's pipeline, mode switch, BN sync and EMA).
_base_ = 'mmdet::yolox/yolox_nano_8xb8-300e_coco.py'
custom_imports = dict(imports=['sn2_det', 'sn2_det.apis.pretrained_check'],
                      allow_failed_imports=False)
# sn2_det's Runner: checkpoint loads checked for their purpose, no checkpoint from
# non-finite weights, one training per work dir (sn2_det.engine.runner).
runner_type = 'CheckedRunner'

model = dict(
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True),
    backbone=dict(
        _delete_=True,
        type='ShuffleNetV2',
        widen_factor=0.5,
        out_indices=(0, 1, 2),
        frozen_stages=-1,
        norm_eval=False,
        # torchvision's ImageNet weights (ImageNet mean/std RGB input):
        # python tools/convert_weights.py shufflenetv2_x0.5-f707e7126e.pth \
        #     checkpoints/shufflenet_v2_0.5x_tv.pth
        downsample_split='even',
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/shufflenet_v2_0.5x_tv.pth')),
    neck=dict(in_channels=[48, 96, 192]))
custom_hooks = _base_.custom_hooks + [dict(type='PretrainedBackboneCheckHook')]
