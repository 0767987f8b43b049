# mmdet's Faster R-CNN R50-FPN 1x with the ResNet-50 swapped for ShuffleNet V2 1.0x.
# Stages 2-4 (strides 8/16/32) feed the FPN, whose two extra max-pooled levels give
# strides 64 and 128; anchor scale 4 keeps mmdet's anchor sizes (32 to 512 pixels).
# For ImageNet weights, convert them (tools/convert_weights.py) and set
# backbone.init_cfg=dict(type='Pretrained', checkpoint='...').
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['sn2_det'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='ShuffleNetV2',
        widen_factor=1.0,
        out_indices=(0, 1, 2),
        frozen_stages=1,
        norm_eval=True),
    neck=dict(in_channels=[116, 232, 464], num_outs=5),
    rpn_head=dict(anchor_generator=dict(scales=[4], strides=[8, 16, 32, 64, 128])),
    roi_head=dict(bbox_roi_extractor=dict(featmap_strides=[8, 16, 32, 64])))
