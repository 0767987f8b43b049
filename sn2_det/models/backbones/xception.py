"""The light Xception of Light-Head R-CNN, a comparison row of Table 7.

The ShuffleNet V2 paper (Sec. 5, Table 8, "our impl.") uses the small Xception-like
network of Light-Head R-CNN (Li et al. 2017, Table 7): at 1x conv1 3x3/2 with 24
channels, maxpool 3x3/2, stages of 4/8/4 blocks with 144/288/576 channels at strides
8/16/32, global pooling and the classifier (no final 1x1 conv, so ``out_indices``
ranges over the three stages). Each block is a ResNet bottleneck whose convolutions are
replaced by channel-wise (depthwise-separable) ones, without pre-activation; at widths
0.5x/1x/1.5x/2x the paper reports 40M/145M/305M/525M FLOPs.

The block layout is not published. Ours (:class:`XceptionBlock`): three separable convs
(3x3 depthwise-BN, then 1x1-BN), in -> mid -> mid -> out, ReLU after the first two,
the sum with the shortcut, then ReLU. Three 3x3 depthwise convs give the block the
receptive field of 7 that the ShuffleNet V2 paper (Sec. 5) ascribes to Xception blocks;
no activation between depthwise and pointwise, as the Xception paper recommends. The
stride is in the first depthwise conv; a stride-2 block's shortcut is a separable conv
(3x3 depthwise stride 2-BN, 1x1-BN), keeping every convolution channel-wise. A
bottleneck of out/4 (ResNet's) gives 180M at 1x, 24% over the paper; a bottleneck of
3/16 of the block's output (``bottleneck_ratio``) meets all four of its FLOPs within
3%, with the stem scaled like the stages (12/24/36/48 channels).
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer

from mmdet.registry import MODELS

from .staged_backbone import CheckpointedUnit, StagedBackbone
from ...utils.errors import ConfigError
from ...utils.validation import check_bool, check_choice

# Stem (conv1) and stage2/3/4 output channels: Light-Head R-CNN Table 7 at 1x, scaled.
ARCH_CHANNELS: Dict[float, Sequence[int]] = {
    0.5: (12, 72, 144, 288),
    1.0: (24, 144, 288, 576),
    1.5: (36, 216, 432, 864),
    2.0: (48, 288, 576, 1152),
}
STAGE_REPEATS = (4, 8, 4)


def separable_conv(in_channels: int, out_channels: int, stride: int,
                   act_cfg: Optional[dict], conv_cfg: Optional[dict],
                   norm_cfg: dict) -> nn.Sequential:
    """3x3 depthwise conv-BN (with ``stride``), then 1x1 conv-BN-``act_cfg``."""
    return nn.Sequential(
        ConvModule(in_channels, in_channels, 3, stride, 1, groups=in_channels,
                   conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=None),
        ConvModule(in_channels, out_channels, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                   act_cfg=act_cfg))


class XceptionBlock(CheckpointedUnit):
    """Bottleneck of three separable convs (receptive field 7), post-activation."""

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int,
                 stride: int, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'), act_cfg: dict = dict(type='ReLU'),
                 with_cp: bool = False):
        super().__init__()
        self.with_cp = with_cp
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        self.residual = nn.Sequential(
            separable_conv(in_channels, mid_channels, stride, act_cfg, **common),
            separable_conv(mid_channels, mid_channels, 1, act_cfg, **common),
            separable_conv(mid_channels, out_channels, 1, None, **common))
        if stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = separable_conv(in_channels, out_channels, stride, None, **common)
        self.act = build_activation_layer(act_cfg)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.residual(x) + self.shortcut(x))


@MODELS.register_module()
class Xception(StagedBackbone):
    """Light Xception backbone (Light-Head R-CNN Table 7; ShuffleNet V2 Table 8).

    Args:
        widen_factor: 0.5, 1.0, 1.5 or 2.0 (channels in ``ARCH_CHANNELS``).
        out_indices: outputs to return: 0, 1, 2 = stage2, stage3, stage4 (strides 8,
            16, 32). The network has no final 1x1 conv, so there is no index 3.
        frozen_stages: -1 freezes nothing, 0 the stem (conv1), k in 1..3 the stem and
            the first k stages.
        last_stage_dilation: 1, or 2 to run the last stage at stride 16 (its
            downsampling unit at stride 1, the later units' 3x3 convs dilated by 2),
            the thin map of Light-Head R-CNN at stride 16 as in its authors' code.
        bottleneck_ratio: a block's bottleneck width as a fraction of its output
            width (rounded down), in (0, 1]; 3/16 meets the paper's FLOPs.
        conv_cfg, norm_cfg, act_cfg: as in mmcv's ConvModule.
        norm_eval: keep BN layers in eval mode (frozen statistics) during training.
        with_cp: gradient checkpointing of each block, to save memory.
        init_cfg: mmengine init config.
    """

    def __init__(self, widen_factor: float = 1.0, out_indices: Sequence[int] = (2,),
                 frozen_stages: int = -1, last_stage_dilation: int = 1,
                 bottleneck_ratio: float = 3 / 16,
                 in_channels: int = 3, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 act_cfg: dict = dict(type='ReLU'), norm_eval: bool = False,
                 with_cp: bool = False, init_cfg=None):
        check_choice('widen_factor', widen_factor, tuple(ARCH_CHANNELS))
        check_bool('with_cp', with_cp)
        if (isinstance(bottleneck_ratio, bool)
                or not isinstance(bottleneck_ratio, (int, float))
                or not 0 < bottleneck_ratio <= 1):
            raise ConfigError(f'bottleneck_ratio must be a number in (0, 1], '
                              f'got {bottleneck_ratio!r}')
        super().__init__(out_indices, frozen_stages, norm_eval, num_outputs=3,
                         last_stage_dilation=last_stage_dilation, init_cfg=init_cfg)

        self.widen_factor = float(widen_factor)
        stem_channels, *stage_channels = ARCH_CHANNELS[self.widen_factor]
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)

        self._build_stem(in_channels, stem_channels, **common)
        channels = stem_channels
        built = stage_channels[:self.num_built_layers]  # up to the deepest output
        for repeats, out_channels in zip(STAGE_REPEATS, built):
            mid_channels = max(1, int(out_channels * bottleneck_ratio))
            blocks = [XceptionBlock(channels if i == 0 else out_channels, out_channels,
                                    mid_channels, 2 if i == 0 else 1, with_cp=with_cp,
                                    **common)
                      for i in range(repeats)]
            self.layers.append(nn.Sequential(*blocks))
            channels = out_channels
        self._set_outputs(stage_channels, (8, 16, 32))
