# configs/swap/yolox_nano_sn2-0.5x_8xb8-300e_coco.py
# with ShuffleNet V2* 0.5x: an extra 3x3 depthwise conv (BN, no ReLU) before each unit's
# first pointwise conv. No public ImageNet weights exist:
# pretrain them (docs/table7.md, ImageNet pretraining) on ImageNet mean/std RGB input:
#   tools/dist_train.sh configs/pretrain/shufflenet_v2_star_0.5x_imagenet.py 8
#   python tools/extract_backbone.py \
#       work_dirs/shufflenet_v2_star_0.5x_imagenet/epoch_240.pth \
#       checkpoints/shufflenet_v2_star_0.5x_imagenet.pth
_base_ = './yolox_nano_sn2-0.5x_8xb8-300e_coco.py'

model = dict(backbone=dict(
    star=True, star_act=False, star_proj=False, downsample_split='official',
    init_cfg=dict(checkpoint='checkpoints/shufflenet_v2_star_0.5x_imagenet.pth')))
