# mmdet's SSDLite (320x320) with its MobileNetV2 swapped for ShuffleNet V2 1.0x.
# SSDLite needs two backbone outputs, at strides 16 and 32, the second one wide, and
# builds its four extra levels (strides 64-320, depthwise) on top of the last one:
# stage3 (stride 16, 232 channels) and conv5 (stride 32, 1024 channels) take the
# places of MobileNetV2's layer 4 (96) and conv 1x1 (1280); out_indices=(1, 3).
# SSDNeck passes its inputs through, so its first two out_channels and the head's
# in_channels are the backbone's. The weights' normalisation is mmdet's SSDLite's.
# The backbone trains whole, BN included (24 images a GPU), as mmdet's SSDLite trains
# its MobileNetV2, but from ImageNet weights (mmdet's SSDLite starts from scratch).
# The head is mmdet's SSDHead whose prediction works in mmdet 3.3.0
# (sn2_det.models.dense_heads.PredictableSSDHead).
_base_ = ['mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py',
          '../_base_/swap_sn2.py']

sn2_channels = (232, 1024)  # stage3, conv5
model = dict(
    backbone=dict(_base_.sn2_backbone, out_indices=(1, 3)),
    neck=dict(in_channels=sn2_channels,
              out_channels=(*sn2_channels, 512, 256, 256, 128)),
    bbox_head=dict(type='PredictableSSDHead',
                   in_channels=(*sn2_channels, 512, 256, 256, 128)))
custom_hooks = _base_.custom_hooks + [dict(type='PretrainedBackboneCheckHook')]
