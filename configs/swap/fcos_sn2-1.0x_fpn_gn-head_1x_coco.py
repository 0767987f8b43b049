# mmdet's FCOS (GN head, 1x) with its caffe-style ResNet-50 swapped for ShuffleNet V2
# 1.0x. Stages 2-4 (strides 8/16/32) replace C3-C5 (the FPN already starts at stride
# 8); its two extra convs give strides 64 and 128, as FCOS's points need. Forced by
# the ImageNet weights: their input normalisation (mmdet's FCOS feeds BGR minus the
# caffe mean). Stem and stage2 frozen, BN statistics fixed (2 images a GPU), as the
# ResNet was.
_base_ = ['mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', '../_base_/swap_sn2.py']

model = dict(
    data_preprocessor=_base_.imagenet_rgb,
    backbone=dict(_base_.sn2_backbone, frozen_stages=1, norm_eval=True),
    neck=dict(in_channels=[116, 232, 464], start_level=0))
custom_hooks = [dict(type='PretrainedBackboneCheckHook')]
