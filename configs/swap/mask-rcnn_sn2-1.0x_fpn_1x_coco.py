# mmdet's Mask R-CNN R50-FPN 1x with the ResNet-50 swapped for ShuffleNet V2 1.0x, as
# configs/swap/faster-rcnn_sn2-1.0x_fpn_1x_coco.py: stages 2-4 (strides 8/16/32) feed
# the FPN, whose two extra max-pooled levels give strides 64 and 128; anchor scale 4
# keeps mmdet's anchor sizes (32 to 512 pixels); the box and mask RoI extractors read
# the levels of strides 8-64.
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', '../_base_/swap_sn2.py']

model = dict(
    backbone=dict(_base_.sn2_backbone, frozen_stages=1, norm_eval=True),
    neck=dict(in_channels=[116, 232, 464], num_outs=5),
    rpn_head=dict(anchor_generator=dict(scales=[4], strides=[8, 16, 32, 64, 128])),
    roi_head=dict(bbox_roi_extractor=dict(featmap_strides=[8, 16, 32, 64]),
                  mask_roi_extractor=dict(featmap_strides=[8, 16, 32, 64])))
custom_hooks = [dict(type='PretrainedBackboneCheckHook')]
