"""ShuffleNet v1 backbone, g=3 (Zhang et al., CVPR 2018), a comparison row of Table 7.

The ShuffleNet V2 paper (Sec. 5, Table 8) compares against ShuffleNet v1 with 3 groups
at widths 0.5x/1x/1.5x/2x (38M/140M/292M/524M FLOPs). The network is Table 1 of the
v1 paper: conv1 3x3/2, maxpool 3x3/2, three stages of 4/8/4 units, global pooling and
the classifier; there is no final 1x1 conv (the FLOPs above are met without one), so
``out_indices`` ranges over the three stages only. The stem widths (12/24/24/48) are
those of the authors' code (megvii-model/ShuffleNet-Series); the v1 paper gives only 24.
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer

from mmdet.registry import MODELS

from .staged_backbone import CheckpointedUnit, StagedBackbone
from ...utils.validation import check_bool, check_choice

# Stem (conv1) and stage2/3/4 output channels for g=3 (ShuffleNet V2 paper Table 8).
ARCH_CHANNELS: Dict[float, Sequence[int]] = {
    0.5: (12, 120, 240, 480),
    1.0: (24, 240, 480, 960),
    1.5: (24, 360, 720, 1440),
    2.0: (48, 480, 960, 1920),
}
STAGE_REPEATS = (4, 8, 4)
GROUPS = 3


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """v1 paper Sec. 3.1: reshape channels to (groups, C/groups), transpose, flatten."""
    return x.unflatten(1, (groups, -1)).transpose(1, 2).flatten(1, 2)


class ShuffleV1Unit(CheckpointedUnit):
    """The ShuffleNet unit of v1 paper Fig. 2 (b) (stride 1) and (c) (stride 2).

    1x1 group conv-BN-ReLU, channel shuffle, 3x3 depthwise (stride 1 or 2)-BN, 1x1
    group conv-BN; stride 1 adds the identity, stride 2 concatenates a 3x3/2 average
    pooled shortcut (so the main branch outputs ``out - in`` channels); ReLU last.
    The bottleneck is ``out_channels // 4`` wide. ``group_first`` False makes the
    first 1x1 conv dense (stage2's first unit, whose input is the narrow stem).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 group_first: bool = True, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'), act_cfg: dict = dict(type='ReLU'),
                 with_cp: bool = False):
        super().__init__()
        self.stride = stride
        self.with_cp = with_cp
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        mid = out_channels // 4
        main_out = out_channels - in_channels if stride == 2 else out_channels
        self.pw_reduce = ConvModule(in_channels, mid, 1, groups=GROUPS if group_first else 1,
                                    act_cfg=act_cfg, **common)
        self.depthwise = ConvModule(mid, mid, 3, stride, 1, groups=mid, act_cfg=None,
                                    **common)
        self.pw_expand = ConvModule(mid, main_out, 1, groups=GROUPS, act_cfg=None, **common)
        if stride == 2:
            self.shortcut_pool = nn.AvgPool2d(kernel_size=3, stride=2, padding=1)
        self.act = build_activation_layer(act_cfg)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pw_expand(self.depthwise(channel_shuffle(self.pw_reduce(x), GROUPS)))
        if self.stride == 2:
            return self.act(torch.cat((self.shortcut_pool(x), out), 1))
        return self.act(out + x)


@MODELS.register_module()
class ShuffleNetV1(StagedBackbone):
    """ShuffleNet v1 (g=3) backbone of the ShuffleNet V2 paper's Table 7 / 8.

    Args:
        widen_factor: 0.5, 1.0, 1.5 or 2.0 (channels in ``ARCH_CHANNELS``).
        out_indices: outputs to return: 0, 1, 2 = stage2, stage3, stage4 (strides 8,
            16, 32). The network has no final 1x1 conv, so there is no index 3.
        frozen_stages: -1 freezes nothing, 0 the stem (conv1), k in 1..3 the stem and
            the first k stages.
        last_stage_dilation: 1, or 2 to run the last stage at stride 16 (its
            downsampling unit at stride 1, the later units' 3x3 convs dilated by 2),
            the thin map of Light-Head R-CNN at stride 16 as in its authors' code.
        conv_cfg, norm_cfg, act_cfg: as in mmcv's ConvModule.
        norm_eval: keep BN layers in eval mode (frozen statistics) during training.
        with_cp: gradient checkpointing of each unit, to save memory.
        init_cfg: mmengine init config.
    """

    def __init__(self, widen_factor: float = 1.0, out_indices: Sequence[int] = (2,),
                 frozen_stages: int = -1, last_stage_dilation: int = 1,
                 in_channels: int = 3,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 act_cfg: dict = dict(type='ReLU'), norm_eval: bool = False,
                 with_cp: bool = False, init_cfg=None):
        check_choice('widen_factor', widen_factor, tuple(ARCH_CHANNELS))
        check_bool('with_cp', with_cp)
        super().__init__(out_indices, frozen_stages, norm_eval, num_outputs=3,
                         last_stage_dilation=last_stage_dilation, init_cfg=init_cfg)

        self.widen_factor = float(widen_factor)
        stem_channels, *stage_channels = ARCH_CHANNELS[self.widen_factor]
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)

        self._build_stem(in_channels, stem_channels, **common)
        channels = stem_channels
        built = stage_channels[:self.num_built_layers]  # up to the deepest output
        for stage, (repeats, out_channels) in enumerate(zip(STAGE_REPEATS, built)):
            units = [ShuffleV1Unit(channels, out_channels, 2, group_first=stage > 0,
                                   with_cp=with_cp, **common)]
            units += [ShuffleV1Unit(out_channels, out_channels, 1, with_cp=with_cp, **common)
                      for _ in range(repeats - 1)]
            self.layers.append(nn.Sequential(*units))
            channels = out_channels
        self._set_outputs(stage_channels, (8, 16, 32))
