# mmdet's RetinaNet R50-FPN 1x with the ResNet-50 swapped for ShuffleNet V2 1.0x.
# mmdet's RetinaNet already starts its FPN at stride 8: stages 2-4 replace C3-C5.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', '../_base_/swap_sn2.py']

model = dict(
    backbone=dict(_base_.sn2_backbone, frozen_stages=1, norm_eval=True),
    neck=dict(in_channels=[116, 232, 464], start_level=0))
# Stops before training when the weights are missing or were trained on other input.
custom_hooks = [dict(type='PretrainedBackboneCheckHook')]
