# NanoDet-like: mmdet's GFL (ATSS assignment, quality focal and distribution focal
# losses) on ShuffleNet V2 1.0x at 320x320, NanoDet's backbone and input size, with
# three levels (strides 8/16/32) as NanoDet has. Stages 2-4 (116/232/464 channels)
# replace ResNet-50's C3-C5. The rest is mmdet's GFL R-50 1x (FPN of 256 channels,
# 4-conv head, SGD); NanoDet's lighter PAN and head are not reproduced. Stem and
# stage2 frozen, BN statistics fixed, as the ResNet was.
_base_ = ['mmdet::gfl/gfl_r50_fpn_1x_coco.py', '../_base_/swap_sn2.py']

input_size = 320
model = dict(
    backbone=dict(_base_.sn2_backbone, frozen_stages=1, norm_eval=True),
    neck=dict(in_channels=[116, 232, 464], start_level=0, add_extra_convs=False,
              num_outs=3),
    bbox_head=dict(anchor_generator=dict(strides=[8, 16, 32])))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
custom_hooks = [dict(type='PretrainedBackboneCheckHook')]
