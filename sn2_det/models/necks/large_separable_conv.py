"""The thin feature map of Light-Head R-CNN (Li et al. 2017, Sec. 3.2).

A large separable convolution on the last backbone feature: path A is a k x 1 then a
1 x k convolution, path B is 1 x k then k x 1, and the two are summed. As in the
authors' reference code, there is no BN or activation between the two convolutions
of a path and a ReLU after the sum. Used as a neck: earlier features pass through
unchanged (the RPN's stride-16 feature), the last one is replaced by the thin map.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer
from mmengine.model import BaseModule

from mmdet.registry import MODELS

from ...utils.errors import ConfigError


@MODELS.register_module()
class LargeSeparableConv(BaseModule):
    """Args: in_channels of the last feature; mid_channels (Cmid: 64 in setting S,
    256 in L); out_channels (10 x 7 x 7 = 490 for 7x7 PS-RoI bins of 10 channels);
    kernel_size (k = 15); act_cfg after the sum (None for no activation)."""

    def __init__(self, in_channels: int, mid_channels: int = 64, out_channels: int = 490,
                 kernel_size: int = 15, act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_cfg=dict(type='Normal', layer='Conv2d', std=0.01)):
        super().__init__(init_cfg=init_cfg)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ConfigError(f'kernel_size must be a positive odd number, got {kernel_size}')
        k, p = kernel_size, kernel_size // 2
        self.path_a = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, (k, 1), padding=(p, 0)),
            nn.Conv2d(mid_channels, out_channels, (1, k), padding=(0, p)))
        self.path_b = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, (1, k), padding=(0, p)),
            nn.Conv2d(mid_channels, out_channels, (k, 1), padding=(p, 0)))
        self.act = build_activation_layer(act_cfg) if act_cfg else nn.Identity()
        self.out_channels = out_channels

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        x = inputs[-1]
        return (*inputs[:-1], self.act(self.path_a(x) + self.path_b(x)))
