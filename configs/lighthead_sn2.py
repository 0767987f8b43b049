# Light-Head R-CNN with ShuffleNet V2 1.0x (the paper's 140M level) on COCO 2017,
# fine-tuned from the authors' ImageNet weights (megvii-model/ShuffleNet-Series,
# ShuffleNetV2.1.0x.pth.tar), which were trained on raw BGR pixels:
#   python tools/convert_weights.py ShuffleNetV2.1.0x.pth.tar \
#       checkpoints/shufflenet_v2_1.0x_official.pth
# (torchvision / mmpretrain weights: configs/lighthead_sn2_tv.py). Training stops
# before it starts when the file is missing or was trained on other input
# (sn2_det.apis.pretrained_check).
# The RPN reads stage3 (stride 16), the thin feature map is made from stage4, the
# last stage (stride 32); conv5, a classification layer, is neither built nor run
# (the papers do not say which feature feeds the head: out_indices=(1, 3) would use
# conv5; the neck and the RPN read their input channels from the backbone).
# Stem and stage2 frozen, BN frozen (statistics and affine parameters).
_base_ = './_base_/lighthead_rcnn_coco.py'

model = dict(
    data_preprocessor=dict(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0], bgr_to_rgb=False),
    backbone=dict(
        type='ShuffleNetV2',
        widen_factor=1.0,
        downsample_split='official',
        out_indices=(1, 2),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/shufflenet_v2_1.0x_official.pth')))
