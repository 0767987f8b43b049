# mmdet's Mask R-CNN R50-FPN 1x with the ResNet-50 swapped for ShuffleNet V2 1.0x, as
# configs/swap/faster-rcnn_sn2-1.0x_fpn_1x_coco.py: stages 2-4 (strides 8/16/32) feed
# the FPN, whose two extra max-pooled levels give strides 64 and 128; anchor scale 4
# keeps mmdet's anchor sizes (32 to 512 pixels); the box and mask RoI extractors read
# the levels of strides 8-64.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
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
    neck=dict(in_channels=[116, 232, 464], num_outs=5),
    rpn_head=dict(anchor_generator=dict(scales=[4], strides=[8, 16, 32, 64, 128])),
    roi_head=dict(bbox_roi_extractor=dict(featmap_strides=[8, 16, 32, 64]),
                  mask_roi_extractor=dict(featmap_strides=[8, 16, 32, 64])))
custom_hooks = [dict(type='PretrainedBackboneCheckHook')]
