"""What the deployment tools export: a backbone by name or from a config, or a whole
Light-Head R-CNN detector from its config (and checkpoint), built in eval mode.

Every exporter (ONNX, ncnn) starts from these, so a model is built, initialised and
loaded the same way whatever the format; :func:`load_weights` is the one place a
checkpoint is read.
"""
import contextlib
import logging
import os
from typing import Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.logging import MMLogger

from ..apis.detector_checkpoint import load_detector_checkpoint
from ..utils.config import build_in_mmdet_scope, read_config
from ..utils.validation import check_choice
from ..utils.errors import ConfigError, MissingFileError

CLASSIFICATION_SHAPE = (224, 224)
DETECTION_SHAPE = (800, 1200)
BACKBONES = {'shufflenet_v2': 'ShuffleNetV2'}
SHUFFLENET_OUTPUTS = (0, 1, 2, 3)


@contextlib.contextmanager
def _quiet_mmengine():
    """mmengine's current logger at WARNING for the block (no per-parameter init log)."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _build(cfg: dict) -> nn.Module:
    """Build under the mmdet scope and initialise, without mmengine's per-parameter log."""
    model = build_in_mmdet_scope(cfg)
    with _quiet_mmengine():
        model.init_weights()
    return model.eval()


def backbone_from_config(config: str) -> nn.Module:
    """The ``model.backbone`` of an mmdet config file (after its ``custom_imports``),
    initialised, in eval mode."""
    cfg = read_config(config)
    backbone = cfg.get('model', {}).get('backbone')
    if not backbone:
        raise ConfigError(f'config {config} has no model.backbone to export')
    return _build(backbone.to_dict() if hasattr(backbone, 'to_dict') else dict(backbone))


def backbone_from_name(name: str = 'shufflenet_v2', widen_factor: float = 1.0,
                       star: bool = False,
                       out_indices: Sequence[int] = SHUFFLENET_OUTPUTS) -> nn.Module:
    """A backbone by name (``shufflenet_v2``; ``star=True`` for V2*), every output by
    default (stage2, stage3, stage4, conv5), Kaiming-initialised, in eval mode."""
    check_choice('backbone', name, tuple(BACKBONES))
    return _build(dict(type=BACKBONES[name], widen_factor=widen_factor, star=star,
                       out_indices=tuple(out_indices)))


def check_shape(shape: Sequence[int]) -> Tuple[int, int]:
    """An export's input size: two positive ints (H, W), as a tuple."""
    if (not isinstance(shape, (tuple, list)) or len(shape) != 2
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape)):
        raise ConfigError(f'shape must be two positive ints (H, W), got {shape!r}')
    return tuple(shape)


def load_weights(model: nn.Module, checkpoint: str, config: Optional[str] = None) -> None:
    """Load ``checkpoint`` into ``model`` strictly (every key, every shape; a detector's
    misfit names ``config``, see :mod:`sn2_det.apis.detector_checkpoint`)."""
    if not os.path.isfile(checkpoint):
        raise MissingFileError(f'checkpoint file not found: {checkpoint}')
    load_detector_checkpoint(model, checkpoint, config, purpose='evaluate')


def detector_from_config(config: str, checkpoint: Optional[str] = None,
                         cfg_options: Optional[dict] = None) -> nn.Module:
    """The ``model`` of a LightHeadRCNN config (with ``cfg_options`` merged, e.g.
    ``{'model.test_cfg.rcnn.score_thr': 0.05}``), loaded from ``checkpoint`` if given
    (strictly), else randomly initialised, in eval mode. The backbone's ImageNet weights
    (a ``Pretrained`` ``init_cfg``) are not read either way, as in mmdet's
    ``init_detector``."""
    cfg = read_config(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if not cfg.get('model'):
        raise ConfigError(f'config {config} has no model to export')
    init = cfg.model.backbone.get('init_cfg')
    if isinstance(init, dict) and init.get('type') == 'Pretrained':
        cfg.model.backbone.init_cfg = None
    model = build_in_mmdet_scope(cfg.model)
    with _quiet_mmengine():
        if checkpoint is None:
            model.init_weights()
        else:
            load_weights(model, checkpoint, config)
    return model.eval()
