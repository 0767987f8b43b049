"""Position-sensitive RoI feature extractor for mmdet RoI heads (Light-Head Sec. 3.3)."""
from typing import Optional, Sequence

import torch
from mmengine.model import BaseModule

from mmdet.registry import MODELS

from ...ops import ps_roi_align, ps_roi_pool
from ...ops.ps_roi_align import check_reduction
from ...utils.validation import check_choice
from ...utils.errors import ConfigError


@MODELS.register_module()
class PSRoIExtractor(BaseModule):
    """PS-RoI Align (``mode='align'``, the paper's) or PS-RoI pooling (``'pool'``,
    the ablation) on one feature map of ``out_channels * output_size**2`` channels.

    ``reduction`` ('avg' or 'max') and ``aligned`` (half-pixel shift) of PS-RoI Align
    as in :func:`sn2_det.ops.ps_roi_align`: 'avg' with ``aligned=True`` is
    torchvision's op, 'max' with ``aligned=False`` the authors' kernel.
    Returns (K, out_channels, output_size, output_size) for mmdet's bbox heads.
    """

    def __init__(self, output_size: int = 7, out_channels: int = 10,
                 featmap_strides: Optional[Sequence[int]] = (32,), sampling_ratio: int = 2,
                 mode: str = 'align', reduction: str = 'avg', aligned: bool = True,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        check_choice('mode', mode, ('align', 'pool'))
        if mode == 'align':
            check_reduction(reduction, aligned, sampling_ratio)
        elif (reduction, aligned) != ('avg', True):
            raise ConfigError("reduction and aligned are keys of mode='align'; "
                              "mode='pool' averages rounded bins")
        if featmap_strides is not None and len(featmap_strides) != 1:
            raise ConfigError(f'PSRoIExtractor reads one feature map; featmap_strides '
                              f'must have one entry (or None: LightHeadRCNN sets the '
                              f'backbone\'s), got {list(featmap_strides)}')
        self.output_size = output_size
        self.out_channels = out_channels
        self.featmap_strides = None if featmap_strides is None else list(featmap_strides)
        self.sampling_ratio = sampling_ratio
        self.mode = mode
        self.reduction = reduction
        self.aligned = aligned

    @property
    def num_inputs(self) -> int:
        return 1

    def forward(self, feats: Sequence[torch.Tensor], rois: torch.Tensor,
                roi_scale_factor: Optional[float] = None) -> torch.Tensor:
        if roi_scale_factor is not None:
            raise ConfigError('PSRoIExtractor does not rescale RoIs (roi_scale_factor)')
        feat = feats[0]
        expected = self.out_channels * self.output_size ** 2
        if feat.shape[1] != expected:
            raise ConfigError(f'PSRoIExtractor expects {expected} channels (out_channels '
                              f'{self.out_channels} x {self.output_size}^2), the feature '
                              f'map has {feat.shape[1]}')
        scale = 1.0 / self.featmap_strides[0]
        if self.mode == 'pool':
            return ps_roi_pool(feat, rois, self.output_size, scale)
        return ps_roi_align(feat, rois, self.output_size, scale, self.sampling_ratio,
                            reduction=self.reduction, aligned=self.aligned)
