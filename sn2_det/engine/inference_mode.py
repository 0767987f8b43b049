"""The inference mode: one switch used by the benchmark (mode 'deploy') and tests.

``deploy(model)`` puts the model in eval mode and folds every BatchNorm into the
convolution before it (mmcv's ``fuse_conv_bn``), which removes one element-wise pass
per conv and changes no output beyond float rounding (tested).
"""
import torch.nn as nn
from mmcv.cnn import fuse_conv_bn


def deploy(model: nn.Module) -> nn.Module:
    """Eval mode with Conv+BN folded; returns the same (modified) module."""
    model.eval()
    return fuse_conv_bn(model)
