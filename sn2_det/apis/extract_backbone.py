"""Turn a trained classifier checkpoint into a backbone checkpoint for a detector.

The input is an mmengine runner checkpoint of ``ImageClassifier`` (``state_dict``
keys ``backbone.*`` and ``fc.*``, ``meta['cfg']`` the training config, whose literal
``model = dict(...)`` is read without executing the text:
:func:`sn2_det.utils.checkpoint.stored_config`). The output
holds the backbone's weights without the prefix and a ``meta`` with:
``backbone``, the backbone's ``arch_args()`` (checked when a detector loads it with
``init_cfg=dict(type='Pretrained', checkpoint=...)``), when the backbone has that
method; ``data_preprocessor``, the input normalisation it was trained with; and
where it came from. The backbone is built from the config and the weights are
checked against it, so a checkpoint that does not fit fails here, not later.
"""
from typing import Optional

import torch
from mmengine.config import Config

from mmdet.registry import MODELS

from .. import models  # noqa: F401  (registers the backbones)
from ..utils.checkpoint import (CheckpointError, check_state_dict_fits, safe_torch_load,
                                stored_config, strip_prefix)
from ..utils.errors import ConfigError

PREFIX = 'backbone.'


def _training_model(checkpoint: dict, filename: str, config: Optional[str]) -> dict:
    """``model`` of the training config: of ``config`` when given, else the literal one
    stored in the checkpoint (never executed)."""
    if config is not None:
        return Config.fromfile(config).get('model') or {}
    text = (checkpoint.get('meta') or {}).get('cfg')
    if not text:
        raise CheckpointError(f'checkpoint {filename} records no training config '
                              f"(meta['cfg']); pass the config it was trained with")
    model = stored_config(text).get('model')
    if not isinstance(model, dict):
        raise CheckpointError(f'the training config stored in {filename} has no literal '
                              f'model = dict(...) (it is read, never executed); pass the '
                              f'config file instead')
    return model


def extract_backbone(src: str, dst: str, config: Optional[str] = None) -> dict:
    """Write the backbone of classifier checkpoint ``src`` to ``dst``; return its meta.

    ``config`` is the training config; by default the one stored in the checkpoint.
    """
    checkpoint = safe_torch_load(src)
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        raise CheckpointError(f'{src} is not an mmengine runner checkpoint '
                              f"(no 'state_dict')")
    state_dict = strip_prefix(checkpoint['state_dict'], PREFIX)
    if not state_dict:
        raise CheckpointError(f'checkpoint {src} has no {PREFIX!r} keys; is it a '
                              f'classifier trained with configs/pretrain?')
    model_cfg = _training_model(checkpoint, src, config)
    if not isinstance(model_cfg.get('backbone'), dict):
        raise ConfigError(f'the config of {src} has no model.backbone')
    backbone_cfg = model_cfg['backbone']
    backbone_cfg = backbone_cfg.to_dict() if hasattr(backbone_cfg, 'to_dict') \
        else dict(backbone_cfg)
    backbone_cfg['init_cfg'] = None
    backbone = MODELS.build(backbone_cfg)
    check_state_dict_fits(backbone, state_dict, src)

    meta = dict(source=src, source_layout='sn2_det ImageClassifier',
                backbone_config=backbone_cfg)
    if hasattr(backbone, 'arch_args'):
        meta['backbone'] = backbone.arch_args()
    preprocessor = model_cfg.get('data_preprocessor')
    if preprocessor:
        meta['data_preprocessor'] = {k: preprocessor[k] for k in
                                     ('mean', 'std', 'bgr_to_rgb') if k in preprocessor}
    old_meta = checkpoint.get('meta') or {}
    meta.update({k: old_meta[k] for k in ('epoch', 'iter') if k in old_meta})
    torch.save(dict(state_dict=state_dict, meta=meta), dst)
    return meta
