# Light-Head R-CNN with ShuffleNet V2 1.0x (the paper's 140M level) on COCO 2017.
# The RPN reads stage3 (stride 16), the thin feature map is made from stage4, the
# last stage (stride 32); conv5, a classification layer, is not used (the papers do
# not say which feature feeds the head: out_indices=(1, 3) would use conv5; the neck
# and the RPN read their input channels from the backbone).
# Stem and stage2 frozen, BN frozen (statistics and affine parameters).
_base_ = './_base_/lighthead_rcnn_coco.py'

model = dict(
    backbone=dict(
        type='ShuffleNetV2',
        widen_factor=1.0,
        out_indices=(1, 2),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        # ImageNet weights: tools/convert_weights.py (or tools/extract_backbone.py
        # after pretraining), then init_cfg=dict(type='Pretrained', checkpoint='PATH')
        norm_eval=True))
