# mmdet's RTMDet-tiny with its CSPNeXt-tiny swapped for ShuffleNet V2 1.0x.
# Stages 2-4 (strides 8/16/32, 116/232/464 channels) replace CSPNeXt's three outputs;
# the PAFPN keeps its 96 output channels. Forced by the ImageNet weights: their input
# normalisation (RGB ImageNet mean/std; mmdet's RTMDet normalises BGR).
# The backbone trains whole, BN included, as RTMDet trains its CSPNeXt (32 images a
# GPU). mmdet's pipeline (cached Mosaic / MixUp), its switch to the plain stage-2
# pipeline 20 epochs before the end and its EMA stay as they are.
_base_ = ['mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py', '../_base_/swap_sn2.py']

model = dict(
    data_preprocessor=_base_.imagenet_rgb,
    backbone=_base_.sn2_backbone,
    neck=dict(in_channels=[116, 232, 464]))
# mmdet's EMA and pipeline switch, then: stop before training when the weights are
# missing or were trained on other input.
custom_hooks = _base_.custom_hooks + [dict(type='PretrainedBackboneCheckHook')]
