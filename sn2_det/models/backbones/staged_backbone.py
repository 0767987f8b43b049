"""The skeleton our backbones share: a stem, stages, optional final conv; and the
building-block base with gradient checkpointing (:class:`CheckpointedUnit`).

A subclass calls ``_build_stem`` (``conv1``, ``maxpool``), appends to ``layers`` the
first ``num_built_layers`` of the three stages at strides 8, 16, 32 and the final
1x1 conv where the network has one, and ends with ``_set_outputs``; this class checks
and applies the common arguments: ``out_indices`` index
``layers``; ``frozen_stages`` -1 freezes nothing, 0 the stem, k the stem and the
first k stages; ``norm_eval`` keeps BN layers in eval mode while training;
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...)`` loads strictly,
naming mismatched keys and shapes (mmengine's loader only warns), and checks the
architecture a checkpoint records against ``arch_args()`` where a backbone has it.
A config key a backbone has no argument for is named, with the closest and the valid
ones, by the config check before a run (:mod:`sn2_det.apis.model_check`).

Only the layers up to the deepest of ``out_indices`` are built: conv5 of a detector
that reads stage 4 is neither computed nor trained, so every trainable parameter gets
a gradient and mmengine's DDP wrapper runs with its default
``find_unused_parameters=False``. ``unbuilt_layers`` names the layers of the whole
network that are left out; a whole-network ImageNet checkpoint (a classifier's
backbone) still loads strictly: its keys of those layers must be there and are
dropped by name, every other key must fit (:func:`load_backbone_checkpoint`).

``last_stage_dilation=2`` runs the last stage at stride 16 (:func:`dilate_last_stage`),
for the thin feature map of Light-Head R-CNN at stride 16 as in its authors' code.
"""
from typing import Sequence

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ...utils.checkpoint import load_backbone_checkpoint
from ...utils.validation import check_bool, check_choice, check_out_indices

DEFAULT_INIT = [dict(type='Kaiming', layer='Conv2d'),
                dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]


class CheckpointedUnit(nn.Module):
    """A building block: ``_forward`` runs under gradient checkpointing when
    ``with_cp`` is set and gradients are needed (saves memory, recomputes)."""

    with_cp = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)


def dilate_last_stage(units: Sequence[nn.Module], dilation: int) -> None:
    """Stride 16 instead of 32 for the last stage, as TF-slim's ``output_stride=16``
    that the Light-Head R-CNN authors' ResNet uses: the downsampling unit (the first
    of ``units``) runs at stride 1, the units after it have their k x k convolutions
    (k > 1) dilated by ``dilation`` (padding grows to keep the size)."""
    first, *rest = units
    for module in first.modules():
        if isinstance(module, (nn.Conv2d, nn.AvgPool2d, nn.MaxPool2d)):
            module.stride = (1, 1) if isinstance(module, nn.Conv2d) else 1
    for unit in rest:
        for module in unit.modules():
            if isinstance(module, nn.Conv2d) and max(module.kernel_size) > 1:
                module.dilation = (dilation, dilation)
                module.padding = tuple(dilation * (k // 2) for k in module.kernel_size)


class StrictPretrainedMixin:
    """``init_cfg`` type 'Pretrained' through :func:`load_backbone_checkpoint`, strictly;
    the checkpoint holds the whole network (a classifier's backbone), so the keys of
    ``unbuilt_layers`` (module names past the deepest output) must be in it and are
    dropped."""

    unbuilt_layers: Sequence[str] = ()

    def init_weights(self):
        init_cfg = self.init_cfg
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            load_backbone_checkpoint(self, init_cfg['checkpoint'],
                                     prefix=init_cfg.get('prefix'),
                                     unbuilt_layers=self.unbuilt_layers)
            self._is_init = True
            return
        super().init_weights()


class StagedBackbone(StrictPretrainedMixin, BaseModule):

    def __init__(self, out_indices: Sequence[int], frozen_stages: int, norm_eval: bool,
                 num_outputs: int, last_stage_dilation: int = 1, init_cfg=None):
        out_indices = check_out_indices(out_indices, tuple(range(num_outputs)))
        check_choice('frozen_stages', frozen_stages, (-1, 0, 1, 2, 3))
        check_choice('last_stage_dilation', last_stage_dilation, (1, 2))
        check_bool('norm_eval', norm_eval)
        super().__init__(init_cfg=DEFAULT_INIT if init_cfg is None else init_cfg)
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.last_stage_dilation = last_stage_dilation
        # layers[i] is output i: build up to the deepest output, name the rest
        self.num_built_layers = max(out_indices) + 1
        self.unbuilt_layers = tuple(f'layers.{i}' for i in
                                    range(self.num_built_layers, num_outputs))

    def _build_stem(self, in_channels: int, stem_channels: int, **conv_args):
        """conv1 (3x3, stride 2, ConvModule) and maxpool (3x3, stride 2), shared by
        every backbone here, and an empty ``layers`` for the subclass to fill."""
        self.conv1 = ConvModule(in_channels, stem_channels, 3, 2, 1, **conv_args)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layers = nn.ModuleList()

    def _set_outputs(self, channels: Sequence[int], strides: Sequence[int]):
        """Dilation of the last stage (``layers[2]``, where built), ``out_channels`` /
        ``out_strides`` of the selected outputs, then freezing. ``channels`` and
        ``strides`` are those of every output of the whole network."""
        assert len(self.layers) == self.num_built_layers, 'build up to the deepest output'
        if self.last_stage_dilation > 1:
            if len(self.layers) > 2:
                dilate_last_stage(list(self.layers[2]), self.last_stage_dilation)
            strides = [16 if i >= 2 else s for i, s in enumerate(strides)]
        self.out_channels = [channels[i] for i in self.out_indices]
        self.out_strides = [strides[i] for i in self.out_indices]
        self._freeze_stages()

    def _freeze_stages(self):
        frozen = ([self.conv1] if self.frozen_stages >= 0 else []) + \
            list(self.layers[:max(self.frozen_stages, 0)])
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def forward(self, x: torch.Tensor):
        x = self.maxpool(self.conv1(x))
        outs = []
        for i, layer in enumerate(self.layers):  # up to the deepest output only
            x = layer(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
