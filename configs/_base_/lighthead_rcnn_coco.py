# Light-Head R-CNN, small setting "S" (Li et al. 2017), on COCO 2017 at 800x1200,
# as the ShuffleNet V2 paper's detection experiment uses it (docs/paper.md Sec. 2, 4).
# Backbone-agnostic: a config that inherits this sets model.backbone (two outputs:
# the stride-16 stage for the RPN, the last stage for the thin map); the neck's and
# the RPN's in_channels are read from it unless set.
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
# sn2_det.apis.pretrained_check: the hook that refuses frozen layers without
# pretrained weights, and weights trained on other input normalisation.
custom_imports = dict(imports=['sn2_det', 'sn2_det.apis.pretrained_check'],
                      allow_failed_imports=False)
# sn2_det's Runner: checkpoint loads checked for their purpose, no checkpoint from
# non-finite weights, one training per work dir (sn2_det.engine.runner).
runner_type = 'CheckedRunner'

model = dict(
    type='LightHeadRCNN',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    # Thin feature map: k=15, Cmid=64 (setting S), Cout = 10 x 7 x 7.
    neck=dict(type='LargeSeparableConv', mid_channels=64, out_channels=490,
              kernel_size=15),
    rpn_head=dict(
        # mmdet's RPNHead; its NMS stops once max_per_img proposals are kept.
        type='TopKNMSRPNHead',
        feat_channels=256,  # one 3x3 conv of 256 channels
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[2, 4, 8, 16, 32],  # x stride 16: 32..512 pixels
            ratios=[0.5, 1.0, 2.0],
            strides=[16]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                        target_stds=[1.0] * 4),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    roi_head=dict(
        type='StandardRoIHead',
        # featmap_strides None: the backbone's last stride (32; 16 with
        # last_stage_dilation=2). reduction='avg', aligned=True: torchvision's
        # PS-RoI Align; the authors' kernel is reduction='max', aligned=False.
        bbox_roi_extractor=dict(type='PSRoIExtractor', mode='align', output_size=7,
                                out_channels=10, featmap_strides=None,
                                sampling_ratio=2, reduction='avg', aligned=True),
        bbox_head=dict(
            # mmdet's ConvFCBBoxHead, its class-wise NMS stopping at max_per_img:
            # one FC of 2048 + ReLU, then cls and reg.
            type='TopKNMSBBoxHead',
            num_shared_convs=0,
            num_shared_fcs=1,
            in_channels=10,
            roi_feat_size=7,
            fc_out_channels=2048,
            num_classes=80,
            # The paper says class-agnostic regression, the reference code is
            # class-specific; we follow the paper. Set False for the code's choice.
            reg_class_agnostic=True,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                            target_stds=[0.1, 0.1, 0.2, 0.2]),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=2.0))),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3,
                          min_pos_iou=0.3, match_low_quality=True, ignore_iof_thr=-1),
            sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5,
                         neg_pos_ub=-1, add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        rpn_proposal=dict(nms_pre=12000, max_per_img=2000,
                          nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0),
        rcnn=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                          min_pos_iou=0.5, match_low_quality=False, ignore_iof_thr=-1),
            # OHEM: the 256 hardest RoIs of each image, positive or negative, ranked
            # by classification loss (mmdet's); the authors' code ranks by cls + box
            # loss over the batch: rank_by='cls+box', pool='batch' with
            # roi_head.type='OHEMRoIHead' (docs/lighthead.md).
            sampler=dict(type='HardestRoISampler', num=256, add_gt_as_proposals=True,
                         rank_by='cls', pool='image'),
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        rpn=dict(nms_pre=6000, max_per_img=1000,
                 nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0),
        rcnn=dict(score_thr=0.001, nms=dict(type='nms', iou_threshold=0.5),
                  max_per_img=100)))

# Short side 800, long side at most 1200; horizontal flip in training.
# Bad data (docs/reliability.md): training skips an unreadable image with a
# warning and stops when more than 1% of the loads fail; evaluation counts unreadable
# images and leaves them out of the COCO metric; annotations pass written rules.
train_pipeline = [
    dict(type='LoadImageSafely', on_unreadable='skip', max_unreadable_share=0.01),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1200, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    # mmcv's loader, the name DetInferencer looks for, reading through a file backend
    # that refuses an unreadable image naming it; CheckedCocoDataset reads with
    # LoadImageSafely in its place (unreadable: a placeholder the metric leaves out)
    dict(type='LoadImageFromFile', backend_args=dict(backend='checked_image')),
    dict(type='Resize', scale=(1200, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                    'img_unreadable')),
]
# Faults: augmentation draws are a function of (seed, epoch, position, index)
# and the model's of (seed, iteration), so --resume continues as the run would have.
# SeededDataset is a flat wrapper: `dataset_type` is the dataset, the other keys its own.
train_dataloader = dict(
    sampler=dict(type='SeededSampler'),  # wraps DefaultSampler(shuffle=True)
    dataset=dict(type='SeededDataset', dataset_type='CheckedCocoDataset',
                 pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(type='CheckedCocoDataset', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='CheckedCocoMetric')
test_evaluator = val_evaluator

# SGD, lr 0.01 for 16 images a step (8 GPUs x 2), momentum 0.9, weight decay 1e-4,
# linear warm-up; mmdet's 1x schedule (12 epochs, steps at 8 and 11), which the
# papers do not fix (the authors' is configs/lighthead_sn2_150k.py).
# auto_scale_lr rescales lr for other total batch sizes. The thin map (the neck's
# large separable conv) learns at 3x lr, as the authors' code multiplies its
# gradients by 3 (docs/lighthead.md); lr_mult=1.0 turns that off.
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4),
                     paramwise_cfg=dict(custom_keys={'neck': dict(lr_mult=3.0)}))

# A NaN or infinite loss stops the run, naming the iteration and the loss term;
# IterationSeedHook makes a resumed run draw as the uninterrupted one did;
# PretrainedBackboneCheckHook stops a run whose frozen layers have no pretrained
# weights, or whose weights were trained on other input normalisation.
custom_hooks = [dict(type='NonFiniteLossHook'), dict(type='IterationSeedHook'),
                dict(type='PretrainedBackboneCheckHook')]
auto_scale_lr = dict(enable=True, base_batch_size=16)

# A fixed seed (mmdet leaves it random): runs repeat, and a killed run resumes to the
# uninterrupted run's losses (the data order is drawn before a checkpoint loads).
randomness = dict(seed=0)
