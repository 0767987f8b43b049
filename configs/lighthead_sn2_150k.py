# configs/lighthead_sn2.py on the Light-Head R-CNN authors' schedule
# (zengarden/light_head_rcnn, config.py and tools/train.py) instead of mmdet's 1x:
# lr 0.01 for 16 images, 150k iterations (30 "epochs" of 80k images at 16 a step),
# x0.1 at 95k and 125k, linear warm-up over 500 iterations from 1/3; weight decay
# on weights, not biases.
_base_ = './lighthead_sn2.py'

train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=150000,
                 val_interval=10000)
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=150000,
         milestones=[95000, 125000], gamma=0.1),
]
# bias_decay_mult does not reach parameters matched by custom_keys (the thin map's
# 3x lr): its biases get their own keys.
optim_wrapper = dict(paramwise_cfg=dict(
    bias_decay_mult=0.0,
    custom_keys={f'neck.{path}.{i}.bias': dict(lr_mult=3.0, decay_mult=0.0)
                 for path in ('path_a', 'path_b') for i in (0, 1)}))
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=10000, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
