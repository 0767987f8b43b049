# mmdet's RetinaNet R50-FPN 1x with the ResNet-50 swapped for ShuffleNet V2 1.0x.
# mmdet's RetinaNet already starts its FPN at stride 8: stages 2-4 replace C3-C5.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['sn2_det', 'sn2_det.apis.pretrained_check'],
                      allow_failed_imports=False)
# sn2_det's Runner: checkpoint loads checked for their purpose, no checkpoint from
# non-finite weights, one training per work dir (sn2_det.engine.runner).
runner_type = 'CheckedRunner'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ShuffleNetV2',
        widen_factor=1.0,
        out_indices=(0, 1, 2),
        frozen_stages=1,
        norm_eval=True,
        # torchvision's ImageNet weights (mmdet's ImageNet mean/std RGB input):
        # python tools/convert_weights.py shufflenetv2_x1-5666bf0f80.pth \
        #     checkpoints/shufflenet_v2_1.0x_tv.pth
        downsample_split='even',
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/shufflenet_v2_1.0x_tv.pth')),
    neck=dict(in_channels=[116, 232, 464], start_level=0))
# Stops before training when the weights are missing or were trained on other input.
custom_hooks = [dict(type='PretrainedBackboneCheckHook')]
