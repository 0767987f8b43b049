# What every configs/swap/ config adds to the mmdet config it inherits: the plugin,
# sn2_det's Runner (checkpoint loads checked for their purpose, no checkpoint from
# non-finite weights, one training per work dir: sn2_det.engine.runner), and the
# ShuffleNet V2 1.0x backbone that replaces the base's, trained whole with its BN, as
# the one-stage detectors train theirs (the two-stage and FPN configs freeze the stem
# and stage2 and fix the BN statistics, as mmdet's ResNets are). Its weights are
# torchvision's ImageNet ones, trained on ImageNet mean/std RGB input:
#   python tools/convert_weights.py shufflenetv2_x1-5666bf0f80.pth \
#       checkpoints/shufflenet_v2_1.0x_tv.pth
# PretrainedBackboneCheckHook (in each config's custom_hooks) stops before training
# when they are missing or the config normalises its input otherwise.
custom_imports = dict(imports=['sn2_det', 'sn2_det.apis.pretrained_check'],
                      allow_failed_imports=False)
runner_type = 'CheckedRunner'

sn2_backbone = dict(
    _delete_=True,
    type='ShuffleNetV2',
    widen_factor=1.0,
    out_indices=(0, 1, 2),  # stages 2-4: strides 8/16/32, 116/232/464 channels
    frozen_stages=-1,
    norm_eval=False,
    downsample_split='even',  # torchvision's layout
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/shufflenet_v2_1.0x_tv.pth'))
# the weights' input normalisation, for bases that normalise otherwise
imagenet_rgb = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                    bgr_to_rgb=True)
