# mmdet's YOLOX-tiny with its CSPDarknet swapped for ShuffleNet V2 1.0x.
# Stages 2-4 (strides 8/16/32, 116/232/464 channels) replace CSPDarknet's three
# outputs; the PAFPN keeps its 96 output channels. Forced by the ImageNet weights:
# their input normalisation (mmdet's YOLOX feeds raw BGR pixels, as its backbone
# trains from scratch). The backbone trains whole, BN included (8 images a GPU).
# mmdet's pipeline (Mosaic, RandomAffine), multi-scale batches, its mode switch
# (no Mosaic, L1 loss on) for the last 15 epochs, BN sync and EMA stay as they are.
_base_ = ['mmdet::yolox/yolox_tiny_8xb8-300e_coco.py', '../_base_/swap_sn2.py']

model = dict(
    data_preprocessor=_base_.imagenet_rgb,
    backbone=_base_.sn2_backbone,
    neck=dict(in_channels=[116, 232, 464]))
# mmdet's mode switch, BN sync and EMA, then: stop before training when the weights
# are missing or were trained on other input.
custom_hooks = _base_.custom_hooks + [dict(type='PretrainedBackboneCheckHook')]
