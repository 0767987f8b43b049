# The family of paper Table 7: Light-Head R-CNN (setting S) on COCO at 800x1200 with one
# of five backbones at one of four complexity levels. A cell's config sets only
# model.backbone.name and .level (sn2_det.models.backbones.table7 holds the widths)
# and the ImageNet weights it fine-tunes: checkpoints/NAME.pth, made by pretraining
# with configs/pretrain/**/NAME.py and tools/extract_backbone.py (docs/table7.md;
# ImageNet mean/std RGB input, as here). The neck and RPN read their input channels
# from the backbone, the PS-RoI extractor its stride.
_base_ = '../_base_/lighthead_rcnn_coco.py'

model = dict(
    backbone=dict(type='Table7Backbone', name='shufflenet_v2', level=140),
    neck=dict(in_channels=None),
    rpn_head=dict(in_channels=None))
