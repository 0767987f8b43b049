"""The inference mode: one switch used by the benchmark (mode 'deploy') and tests.

``deploy(model)`` puts the model in eval mode, folds every BatchNorm into the
convolution before it (mmcv's ``fuse_conv_bn``: one element-wise pass less per conv)
and stores the weights channels-last, the layout oneDNN's CPU convolutions run
fastest in (feed it channels-last inputs, as ``sn2_det.analysis.benchmark`` does).
Outputs change by float rounding only (tested).
"""
import torch
import torch.nn as nn
from mmcv.cnn import fuse_conv_bn


def deploy(model: nn.Module) -> nn.Module:
    """Eval mode, Conv+BN folded, channels-last weights; returns the same module."""
    model.eval()
    return fuse_conv_bn(model).to(memory_format=torch.channels_last)
