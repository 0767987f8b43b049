"""ShuffleNet V2 and ShuffleNet V2* backbones (Ma et al., ECCV 2018, Sec. 4 and 5).

The network of paper Table 5. Channel routing follows the authors' code
(megvii-model/ShuffleNet-Series): a unit does not shuffle its output; the next
stride-1 unit takes the even channels as its identity half and the odd channels as
its main-branch input. That is the "concat, channel shuffle, split" of paper Fig. 3
in one strided view, with the authors' shuffle (reshape to (C/2, 2), transpose).
torchvision and mmpretrain shuffle the other way ((2, C/2), transpose) after every
unit; the two networks are the same function up to fixed channel permutations of
the weights (``shufflenet_v2_weights`` converts between them).
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule

from mmdet.registry import MODELS

from .staged_backbone import CheckpointedUnit, StagedBackbone
from ...utils.validation import check_bool, check_choice

# Output channels of stage2, stage3, stage4 and conv5 (paper Table 5).
ARCH_CHANNELS: Dict[float, Sequence[int]] = {
    0.5: (48, 96, 192, 1024),
    1.0: (116, 232, 464, 1024),
    1.5: (176, 352, 704, 1024),
    2.0: (244, 488, 976, 2048),
}
STAGE_REPEATS = (4, 8, 4)
STEM_CHANNELS = 24
DOWNSAMPLE_SPLITS = ('official', 'even')


def arch_args(widen_factor: float, downsample_split: str, star: bool,
              star_act: bool = False, star_proj: bool = False) -> dict:
    """Canonical architecture arguments, as recorded in converted checkpoints.

    At 0.5x both splits give stage2's first unit 24 + 24 channels, the same network;
    it is recorded as 'even'. Without ``star`` the two V2* options are recorded False.
    """
    if ARCH_CHANNELS[widen_factor][0] == 2 * STEM_CHANNELS:
        downsample_split = 'even'
    return dict(type='ShuffleNetV2', widen_factor=float(widen_factor),
                downsample_split=downsample_split, star=star,
                star_act=star and star_act, star_proj=star and star_proj)


class ShuffleUnit(CheckpointedUnit):
    """One building block of paper Fig. 3 (c) (stride 1) or (d) (stride 2).

    Stride 1: the identity half is the even channels of the input, the main branch
    (1x1 conv-BN-ReLU, 3x3 depthwise-BN, 1x1 conv-BN-ReLU) takes the odd channels.
    Stride 2: no split; ``branch_proj`` (3x3 depthwise stride 2-BN, 1x1 conv-BN-ReLU)
    and ``branch_main`` (with its depthwise at stride 2) both see the whole input.

    ``star`` inserts the extra 3x3 depthwise conv of ShuffleNet V2* (paper Sec. 5,
    "enlarged receptive field") before the first pointwise conv of the main branch,
    and of the projection branch too when ``star_proj``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 proj_channels: int = 0, star: bool = False, star_act: bool = False,
                 star_proj: bool = False, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'), act_cfg: dict = dict(type='ReLU'),
                 with_cp: bool = False):
        super().__init__()
        self.stride = stride
        self.with_cp = with_cp
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        mid = out_channels // 2
        main_in = in_channels if stride == 2 else in_channels // 2
        main_out = out_channels - proj_channels if stride == 2 else out_channels // 2

        def depthwise(channels, dw_stride, act):
            return ConvModule(channels, channels, 3, dw_stride, 1, groups=channels,
                              act_cfg=act_cfg if act else None, **common)

        main = [depthwise(main_in, 1, star_act)] if star else []
        main += [
            ConvModule(main_in, mid, 1, act_cfg=act_cfg, **common),
            depthwise(mid, stride, False),
            ConvModule(mid, main_out, 1, act_cfg=act_cfg, **common),
        ]
        self.branch_main = nn.Sequential(*main)
        if stride == 2:
            proj = [depthwise(in_channels, 2, False)]
            if star and star_proj:
                proj.append(depthwise(in_channels, 1, star_act))
            proj.append(ConvModule(in_channels, proj_channels, 1, act_cfg=act_cfg, **common))
            self.branch_proj = nn.Sequential(*proj)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:
            return torch.cat((self.branch_proj(x), self.branch_main(x)), 1)
        x_proj, x_main = x.unflatten(1, (-1, 2)).unbind(2)
        return torch.cat((x_proj, self.branch_main(x_main)), 1)


@MODELS.register_module()
class ShuffleNetV2(StagedBackbone):
    """ShuffleNet V2 backbone (paper Table 5), and V2* with ``star=True``.

    Args:
        widen_factor: 0.5, 1.0, 1.5 or 2.0, the channel table of paper Table 5.
        out_indices: outputs to return: 0, 1, 2 = stage2, stage3, stage4 (strides 8,
            16, 32), 3 = conv5 (stride 32), numbered as in mmpretrain.
        frozen_stages: -1 freezes nothing, 0 the stem (conv1), k in 1..3 the stem and
            the first k stages (Light-Head R-CNN freezes the stem and stage2: 1).
        last_stage_dilation: 1, or 2 to run the last stage at stride 16 (its
            downsampling unit at stride 1, the later units' 3x3 convs dilated by 2),
            the thin map of Light-Head R-CNN at stride 16 as in its authors' code.
        downsample_split: channel split of a downsampling unit. 'official': the
            projection branch keeps its input width and the main branch outputs the
            rest, as in the authors' code (stage2's first unit: 24 + 92 at 1.0x);
            'even': both branches output half (58 + 58), as torchvision and
            mmpretrain. The two differ only in stage2's first unit.
        star: ShuffleNet V2* of the paper's detection experiment: an extra 3x3
            depthwise conv before the first pointwise conv of every unit's main
            branch. The paper does not say what follows it; we use BN without
            activation, as for every other depthwise conv of the network
            (``star_act=True`` adds a ReLU).
        star_act: ReLU after the extra depthwise conv's BN (only with ``star``).
        star_proj: also put the extra depthwise conv before the pointwise conv of
            the downsampling units' projection branch. The paper does not say; by
            default it is left out, since that branch already has a 3x3 depthwise
            conv in front of its only pointwise conv (only with ``star``).
        conv_cfg, norm_cfg, act_cfg: as in mmcv's ConvModule.
        norm_eval: keep BN layers in eval mode (frozen statistics) during training.
        with_cp: gradient checkpointing of each unit, to save memory.
        init_cfg: mmengine init config; ``dict(type='Pretrained', checkpoint=...)``
            loads a checkpoint written by ``tools/convert_weights.py`` and checks
            that it was made for the same architecture.
    """

    def __init__(self, widen_factor: float = 1.0, out_indices: Sequence[int] = (3,),
                 frozen_stages: int = -1, last_stage_dilation: int = 1,
                 downsample_split: str = 'official',
                 star: bool = False, star_act: bool = False, star_proj: bool = False,
                 in_channels: int = 3, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 act_cfg: dict = dict(type='ReLU'), norm_eval: bool = False,
                 with_cp: bool = False, init_cfg=None):
        check_choice('widen_factor', widen_factor, tuple(ARCH_CHANNELS))
        check_choice('downsample_split', downsample_split, DOWNSAMPLE_SPLITS)
        for name, value in dict(star=star, star_act=star_act, star_proj=star_proj,
                                with_cp=with_cp).items():
            check_bool(name, value)
        super().__init__(out_indices, frozen_stages, norm_eval, num_outputs=4,
                         last_stage_dilation=last_stage_dilation, init_cfg=init_cfg)

        self.widen_factor = float(widen_factor)
        self.downsample_split = downsample_split
        self.star, self.star_act, self.star_proj = star, star_act, star_proj
        self.arch_channels = ARCH_CHANNELS[self.widen_factor]
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)

        self._build_stem(in_channels, STEM_CHANNELS, **common)
        channels = STEM_CHANNELS
        built = self.arch_channels[:self.num_built_layers]  # up to the deepest output
        for repeats, out_channels in zip(STAGE_REPEATS, built):
            proj = channels if downsample_split == 'official' else out_channels // 2
            units = [ShuffleUnit(channels, out_channels, 2, proj, star, star_act,
                                 star_proj, with_cp=with_cp, **common)]
            units += [ShuffleUnit(out_channels, out_channels, 1, 0, star, star_act,
                                  star_proj, with_cp=with_cp, **common)
                      for _ in range(repeats - 1)]
            self.layers.append(nn.Sequential(*units))
            channels = out_channels
        if self.num_built_layers > len(STAGE_REPEATS):  # conv5
            self.layers.append(ConvModule(channels, self.arch_channels[3], 1, **common))
        self._set_outputs(self.arch_channels, (8, 16, 32, 32))

    def arch_args(self) -> dict:
        """The constructor arguments that fix the parameter shapes and routing."""
        return arch_args(self.widen_factor, self.downsample_split, self.star,
                         self.star_act, self.star_proj)
