# mmdet's FCOS (GN head, 1x) with its caffe-style ResNet-50 swapped for ShuffleNet V2
# 1.0x. Stages 2-4 (strides 8/16/32) replace C3-C5 (the FPN already starts at stride
# 8); its two extra convs give strides 64 and 128, as FCOS's points need. Forced by
# the ImageNet weights: their input normalisation (mmdet's FCOS feeds BGR minus the
# caffe mean). Stem and stage2 frozen, BN statistics fixed (2 images a GPU), as the
# ResNet was.
_base_ = 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'
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
        frozen_stages=1,
        norm_eval=True,
        # torchvision's ImageNet weights (ImageNet mean/std RGB input):
        # python tools/convert_weights.py shufflenetv2_x1-5666bf0f80.pth \
        #     checkpoints/shufflenet_v2_1.0x_tv.pth
        downsample_split='even',
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/shufflenet_v2_1.0x_tv.pth')),
    neck=dict(in_channels=[116, 232, 464], start_level=0))
custom_hooks = [dict(type='PretrainedBackboneCheckHook')]
