"""MobileNet v2 with the stage numbering of our backbones, a comparison row of Table 7.

mmdet's ``MobileNetV2`` numbers its outputs by its 8 layers (7 inverted-residual
layers and the final 1x1 conv) and freezes by layer. :class:`StagedMobileNetV2` keeps
its network and weights (same module names) and numbers them like ShuffleNetV2:
out_indices 0, 1, 2 = the ends of the stride-8, 16 and 32 parts (mmdet layers 3, 5, 7)
and 3 = the final 1x1 conv (``conv2``); frozen_stages 0 = the stem (everything before
stride 8: conv1, layer1, layer2), k = the stem and the first k stages. As in our
other backbones, only the layers up to the deepest output are built (with mmdet's
``make_layer``; mmdet's constructor, which builds them all, is not called) and
``unbuilt_layers`` names the rest for a whole-network checkpoint
(``staged_backbone.StrictPretrainedMixin``); ``last_stage_dilation=2`` runs the
stride-32 part (layer6, layer7) at stride 16.
"""
from typing import Optional, Sequence

from mmcv.cnn import ConvModule
from mmdet.models.backbones import MobileNetV2
from mmdet.models.utils import make_divisible
from mmdet.registry import MODELS

from .staged_backbone import DEFAULT_INIT, StrictPretrainedMixin, dilate_last_stage
from ...utils.validation import check_bool, check_choice, check_out_indices
from ...utils.errors import ConfigError

# mmdet layer index (0 = layer1 ... 6 = layer7, 7 = conv2) of each of our out_indices.
OUT_LAYERS = (2, 4, 6, 7)
# Number of mmdet layers frozen with conv1 by our frozen_stages = 0, 1, 2, 3.
FROZEN_LAYERS = (2, 3, 5, 7)
STRIDES = (8, 16, 32, 32)


@MODELS.register_module()
class StagedMobileNetV2(StrictPretrainedMixin, MobileNetV2):
    """mmdet's MobileNetV2 (Sandler et al. 2018) with stage-numbered outputs.

    Args:
        widen_factor: mmdet's width multiplier (channels rounded to multiples of 8;
            the final conv has ``int(1280 * widen_factor)`` channels above 1.0).
        out_indices: 0, 1, 2 = stride 8, 16, 32 stages, 3 = final 1x1 conv.
        frozen_stages: -1 freezes nothing, 0 the stem (conv1, layer1, layer2), k in
            1..3 the stem and the first k stages.
        last_stage_dilation: 1, or 2 for stride 16 in layer6 and layer7 (layer6's
            downsampling block at stride 1, the later blocks' 3x3 convs dilated by 2).
        conv_cfg, norm_cfg, act_cfg, norm_eval, with_cp, init_cfg: as mmdet's.
    """

    def __init__(self, widen_factor: float = 1.0, out_indices: Sequence[int] = (3,),
                 frozen_stages: int = -1, last_stage_dilation: int = 1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'), act_cfg: dict = dict(type='ReLU6'),
                 norm_eval: bool = False, with_cp: bool = False, init_cfg=None):
        if (isinstance(widen_factor, bool) or not isinstance(widen_factor, (int, float))
                or widen_factor <= 0):
            raise ConfigError(f'widen_factor must be a positive number, got {widen_factor!r}')
        check_bool('norm_eval', norm_eval)
        check_bool('with_cp', with_cp)
        out_indices = check_out_indices(out_indices, (0, 1, 2, 3))
        check_choice('frozen_stages', frozen_stages, (-1, 0, 1, 2, 3))
        check_choice('last_stage_dilation', last_stage_dilation, (1, 2))
        # mmdet's MobileNetV2.__init__ builds every layer; BaseModule's is called
        # instead and the layers are built here with the same names, up to the
        # deepest output (mmdet layer OUT_LAYERS[i]; 7 is conv2).
        super(MobileNetV2, self).__init__(init_cfg=DEFAULT_INIT if init_cfg is None
                                          else init_cfg)
        self.pretrained = None
        self.widen_factor = widen_factor
        self.conv_cfg, self.norm_cfg, self.act_cfg = conv_cfg, norm_cfg, act_cfg
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.out_indices = tuple(out_indices)
        self.layer_out_indices = tuple(OUT_LAYERS[i] for i in out_indices)
        self.frozen_stages = frozen_stages
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.in_channels = make_divisible(32 * widen_factor, 8)
        self.conv1 = ConvModule(3, self.in_channels, 3, 2, 1, **common)
        self.out_channel = int(1280 * widen_factor) if widen_factor > 1.0 else 1280
        layer_channels = [make_divisible(channels * widen_factor, 8)
                          for _, channels, _, _ in self.arch_settings] + [self.out_channel]
        names = [f'layer{i + 1}' for i in range(len(self.arch_settings))] + ['conv2']
        deepest = max(self.layer_out_indices)
        self.layers = names[:deepest + 1]
        self.unbuilt_layers = tuple(names[deepest + 1:])
        for name, (expand_ratio, _, num_blocks, stride), out_channels in zip(
                self.layers, self.arch_settings, layer_channels):
            self.add_module(name, self.make_layer(out_channels, num_blocks, stride,
                                                  expand_ratio))
        if 'conv2' in self.layers:
            self.conv2 = ConvModule(self.in_channels, self.out_channel, 1, **common)
        self.out_channels = [layer_channels[OUT_LAYERS[i]] for i in self.out_indices]
        self.last_stage_dilation = last_stage_dilation
        strides = STRIDES
        if last_stage_dilation > 1:
            if 'layer7' in self.layers:  # layer6 and layer7: the stride-32 stage
                dilate_last_stage([*self.layer6, *self.layer7], last_stage_dilation)
            strides = tuple(16 if s == 32 else s for s in STRIDES)
        self.out_strides = [strides[i] for i in self.out_indices]
        self._freeze_stages()

    def _freeze_stages(self):
        """Freeze conv1 and the first layers, BN statistics included (mmdet's leaves
        conv1's BN in training mode)."""
        if self.frozen_stages < 0:
            return
        frozen = [self.conv1] + [getattr(self, name)
                                 for name in self.layers[:FROZEN_LAYERS[self.frozen_stages]]]
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        """mmdet's train() returns None; return the module, as nn.Module does."""
        super().train(mode)
        return self

    def forward(self, x):
        x = self.conv1(x)
        outs = []
        for i, name in enumerate(self.layers):
            x = getattr(self, name)(x)
            if i in self.layer_out_indices:
                outs.append(x)
        return tuple(outs)
