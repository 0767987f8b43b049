# Light-Head R-CNN ShuffleNet V2 sized for a 2-core CPU, on the generated toy-shapes
# dataset (sn2_det.datasets.toy_shapes; `make demo` writes it to data/toy_shapes).
# What differs from configs/lighthead_sn2.py, and why:
# - 256x256 images; 0.5x backbone trained from scratch (no ImageNet weights are
#   shipped: init_cfg None), so nothing is frozen and BN is trained; ImageNet mean/std
#   RGB input;
# - one stage shallower (RPN on stride 8, thin map from stride 16), so that 7x7
#   PS-RoI bins still cover objects of 30-100 pixels;
# - a lighter head (k=7, Cmid=32, FC of 256, 300/100 proposals) and AdamW, which
#   learns from scratch in minutes where SGD needs hours (so no 3x lr of the thin map:
#   AdamW's steps do not scale with the gradient). Recipe keys (docs/lighthead.md) as
#   in the base: PS-RoI Align 'avg', aligned; OHEM by classification loss per image;
#   stride-16 thin map from stage3 (not by dilation).
_base_ = '../lighthead_sn2.py'

data_root = 'data/toy_shapes/'
classes = ('circle', 'square', 'triangle')
metainfo = dict(classes=classes)

model = dict(
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True),
    backbone=dict(widen_factor=0.5, out_indices=(0, 1), frozen_stages=-1,
                  norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
                  init_cfg=None),
    neck=dict(mid_channels=32, kernel_size=7),
    rpn_head=dict(feat_channels=64,
                  anchor_generator=dict(scales=[3, 6, 12], strides=[8])),
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_strides=[16]),
        bbox_head=dict(fc_out_channels=256, num_classes=len(classes))),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=600, max_per_img=100)))

train_pipeline = [
    dict(type='LoadImageSafely', on_unreadable='skip', max_unreadable_share=0.01),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(256, 256), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    # mmcv's loader, the name DetInferencer looks for, reading through a file backend
    # that refuses an unreadable image naming it; CheckedCocoDataset reads with
    # LoadImageSafely in its place (unreadable: a placeholder the metric leaves out)
    dict(type='LoadImageFromFile', backend_args=dict(backend='checked_image')),
    dict(type='Resize', scale=(256, 256), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                    'img_unreadable')),
]
train_dataloader = dict(
    batch_size=8, num_workers=1, persistent_workers=True,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='train/'),
                 filter_cfg=dict(filter_empty_gt=False, min_size=0),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=1, persistent_workers=True,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='val/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min_ratio=0.05, by_epoch=True,
         begin=0, end=max_epochs, convert_to_iter_based=True),
]
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4))
auto_scale_lr = dict(enable=False)
# A checkpoint every epoch, two kept: a run killed at any point resumes (--resume).
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=1, max_keep_ckpts=2))
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
