# mmdet's RTMDet-tiny with its CSPNeXt-tiny swapped for ShuffleNet V2 1.0x.
# Stages 2-4 (strides 8/16/32, 116/232/464 channels) replace CSPNeXt's three outputs;
# the PAFPN keeps its 96 output channels. Forced by the ImageNet weights: their input
# normalisation (RGB ImageNet mean/std; mmdet's RTMDet normalises BGR).
# The backbone trains whole, BN included, as RTMDet trains its CSPNeXt (32 images a
# GPU). mmdet's pipeline (cached Mosaic / MixUp), its switch to the plain stage-2
# pipeline 20 epochs before the end and its EMA stay as they are.
_base_ = 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py'
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
        widen_factor=1.0,
        out_indices=(0, 1, 2),
        frozen_stages=-1,
        norm_eval=False,
        # torchvision's ImageNet weights (ImageNet mean/std RGB input):
        # python tools/convert_weights.py shufflenetv2_x1-5666bf0f80.pth \
        #     checkpoints/shufflenet_v2_1.0x_tv.pth
        downsample_split='even',
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/shufflenet_v2_1.0x_tv.pth')),
    neck=dict(in_channels=[116, 232, 464]))
# mmdet's EMA and pipeline switch, then: stop before training when the weights are
# missing or were trained on other input.
custom_hooks = _base_.custom_hooks + [dict(type='PretrainedBackboneCheckHook')]
