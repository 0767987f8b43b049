# ImageNet-1k pretraining of a backbone as a classifier, with the schedule of the
# official ShuffleNet code (megvii-model/ShuffleNet-Series, train.py): SGD momentum
# 0.9, lr 0.5 for a batch of 1024 decayed linearly to 0 over 300k iterations,
# weight decay 4e-5 on conv/linear weights only, label smoothing 0.1; random-resized
# crop 224, colour jitter 0.4/0.4/0.4 and flip for training; short side 256 and
# centre crop 224 for testing. A config that inherits this sets model.backbone.
#
# What differs from the official code, and why:
# - 240 epochs instead of 300k iterations: the same length at a batch of 1024
#   (300k x 1024 / 1.28M images), and still right for other batch sizes, where
#   auto_scale_lr rescales lr linearly (0.5 x batch / 1024);
# - inputs normalised with the ImageNet RGB mean/std, as mmdet's detectors (and
#   configs/_base_/lighthead_rcnn_coco.py) feed them, instead of raw BGR 0-255, so
#   that the backbone is fine-tuned on the input it was pretrained on;
# - no final BN-statistics pass (the official code recomputes BN statistics over
#   one epoch at lr 0 after training); the running averages are kept.
custom_imports = dict(imports=['sn2_det'], allow_failed_imports=False)
# sn2_det's Runner: checkpoint loads checked for their purpose, no checkpoint from
# non-finite weights, one training per work dir (sn2_det.engine.runner).
runner_type = 'CheckedRunner'
default_scope = 'mmdet'

model = dict(
    type='ImageClassifier',
    num_classes=1000,
    dropout=0.0,
    label_smoothing=0.1,
    data_preprocessor=dict(type='ImgDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True))

# data/imagenet/{train,val}/<wnid>/*.JPEG (val sorted into class folders, e.g. with
# valprep.sh); for a flat val folder with a label file use
# val_dataloader.dataset.ann_file='meta/val.txt' (lines 'name.JPEG label').
data_root = 'data/imagenet/'
train_pipeline = [
    dict(type='ReadImage'),
    dict(type='RandomResizedCrop', size=224, scale=(0.08, 1.0)),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackClsInputs'),
]
test_pipeline = [
    dict(type='ReadImage'),
    dict(type='ResizeShortSide', size=256),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackClsInputs'),
]
# 8 GPUs x 128 = 1024 images a step, the official batch.
train_dataloader = dict(
    batch_size=128, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='ImageFolderDataset', data_root=data_root,
                 data_prefix=dict(img_path='train/'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ImageFolderDataset', data_root=data_root,
                 data_prefix=dict(img_path='val/'), pipeline=test_pipeline,
                 test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='TopKAccuracy', topk=(1, 5))
test_evaluator = val_evaluator

# Linear decay to 0, stepped every iteration; validation and checkpoints every 8
# epochs (10k iterations at a batch of 1024, the official interval).
max_epochs = 240
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=8)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.5, momentum=0.9, weight_decay=4e-5),
    # The official code decays only weights of more than one dimension (conv and
    # linear), not BN parameters or biases.
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=True, begin=0,
         end=max_epochs, convert_to_iter_based=True),
]
auto_scale_lr = dict(enable=True, base_batch_size=1024)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=8, max_keep_ckpts=3,
                    save_best='accuracy/top1', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method='fork',
                                                 opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_processor = dict(by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
