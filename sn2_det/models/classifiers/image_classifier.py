"""An image classifier around any registered backbone, for ImageNet pretraining."""
from typing import List, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement

from mmdet.registry import MODELS

from ...utils.errors import ConfigError

# ImageNet RGB statistics, as mmdet's detector configs normalise their input.
IMAGENET_PREPROCESSOR = dict(type='ImgDataPreprocessor', mean=[123.675, 116.28, 103.53],
                             std=[58.395, 57.12, 57.375], bgr_to_rgb=True)
MODES = ('loss', 'predict', 'tensor')


@MODELS.register_module()
class ImageClassifier(BaseModel):
    """Backbone -> its last output -> global average pooling -> dropout -> linear.

    Args:
        backbone: config of a backbone registered in mmdet's MODELS.
        num_classes: number of classes.
        in_channels: channels of the backbone's last output; by default the built
            backbone's ``out_channels[-1]``.
        dropout: dropout probability before the classifier (0: none).
        label_smoothing: label smoothing of the cross-entropy loss.
        data_preprocessor: by default mmengine's ``ImgDataPreprocessor`` with the
            ImageNet RGB mean/std and BGR->RGB, the normalisation of mmdet's detectors.

    ``forward(inputs, data_samples, mode)``: 'tensor' gives the logits, 'loss' a dict
    with the cross-entropy against ``data_samples[i].gt_label``, 'predict' the data
    samples with ``pred_score`` (softmax) and ``pred_label`` added.
    """

    def __init__(self, backbone: dict, num_classes: int = 1000,
                 in_channels: Optional[int] = None, dropout: float = 0.0,
                 label_smoothing: float = 0.0, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = dict(type='Normal', std=0.01,
                                                 override=dict(name='fc'))):
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) \
                or num_classes < 1:
            raise ConfigError(f'num_classes must be a positive int, got {num_classes!r}')
        for name, value in (('dropout', dropout), ('label_smoothing', label_smoothing)):
            if not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ConfigError(f'{name} must be a number in [0, 1), got {value!r}')
        super().__init__(data_preprocessor=data_preprocessor or IMAGENET_PREPROCESSOR,
                         init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        if in_channels is None:
            out_channels = getattr(self.backbone, 'out_channels', None)
            if not out_channels:
                raise ConfigError(f'{type(self.backbone).__name__} has no out_channels '
                                  f'attribute: set in_channels of ImageClassifier')
            in_channels = out_channels[-1] if isinstance(out_channels, (list, tuple)) \
                else out_channels
        self.num_classes = num_classes
        self.label_smoothing = float(label_smoothing)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.fc = nn.Linear(in_channels, num_classes)

    def extract_feat(self, inputs: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled last backbone output, (N, C)."""
        feats = self.backbone(inputs)
        if isinstance(feats, (list, tuple)):
            feats = feats[-1]
        return F.adaptive_avg_pool2d(feats, 1).flatten(1)

    def forward(self, inputs: torch.Tensor,
                data_samples: Optional[List[BaseDataElement]] = None,
                mode: str = 'tensor') -> Union[dict, list, torch.Tensor]:
        if mode not in MODES:
            raise ConfigError(f'mode must be one of {MODES}, got {mode!r}')
        logits = self.fc(self.dropout(self.extract_feat(inputs)))
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            if not data_samples:
                raise ConfigError("mode='loss' needs data_samples with gt_label")
            labels = torch.stack([s.gt_label.reshape(()) for s in data_samples])
            return dict(loss=F.cross_entropy(logits, labels.to(logits.device),
                                             label_smoothing=self.label_smoothing))
        if data_samples is None:
            data_samples = [BaseDataElement() for _ in range(len(logits))]
        scores = logits.softmax(1).detach()
        for sample, score in zip(data_samples, scores):
            sample.pred_score = score
            sample.pred_label = score.argmax()
        return data_samples
