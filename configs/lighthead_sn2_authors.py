# configs/lighthead_sn2.py with every choice of the Light-Head R-CNN authors' code
# (zengarden/light_head_rcnn) where it differs from our defaults (docs/lighthead.md):
# the thin map at stride 16 from the dilated last stage, PS-RoI Align taking the max
# of a bin's samples without the half-pixel shift, OHEM ranking by classification
# plus box loss over the whole batch, class-specific box regression, and their
# 150k-iteration schedule. (The 3x lr of the thin map is already the default.)
_base_ = './lighthead_sn2_150k.py'

model = dict(
    backbone=dict(last_stage_dilation=2),
    roi_head=dict(
        type='OHEMRoIHead',
        bbox_roi_extractor=dict(reduction='max', aligned=False),
        bbox_head=dict(reg_class_agnostic=False)),
    train_cfg=dict(rcnn=dict(sampler=dict(rank_by='cls+box', pool='batch'))))
