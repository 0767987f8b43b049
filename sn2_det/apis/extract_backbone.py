"""Turn a trained classifier checkpoint into a backbone checkpoint for a detector.

The input is an mmengine runner checkpoint of ``ImageClassifier`` (``state_dict``
keys ``backbone.*`` and ``fc.*``, ``meta['cfg']`` the training config). The output
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
                                strip_prefix)
from ..utils.errors import ConfigError

PREFIX = 'backbone.'


def _training_config(checkpoint: dict, filename: str, config: Optional[str]) -> Config:
    if config is not None:
        return Config.fromfile(config)
    text = (checkpoint.get('meta') or {}).get('cfg')
    if not text:
        raise CheckpointError(f'checkpoint {filename} records no training config '
                              f"(meta['cfg']); pass the config it was trained with")
    try:
        return Config.fromstring(text, file_format='.py')
    except Exception as err:  # whatever executing the stored config text raises
        raise CheckpointError(f'cannot read the training config stored in {filename} '
                              f'({err}); pass the config file instead') from err


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
    cfg = _training_config(checkpoint, src, config)
    if 'backbone' not in cfg.get('model', {}):
        raise ConfigError(f'the config of {src} has no model.backbone')
    backbone_cfg = cfg.model.backbone.to_dict()
    backbone_cfg['init_cfg'] = None
    backbone = MODELS.build(backbone_cfg)
    check_state_dict_fits(backbone, state_dict, src)

    meta = dict(source=src, source_layout='sn2_det ImageClassifier',
                backbone_config=backbone_cfg)
    if hasattr(backbone, 'arch_args'):
        meta['backbone'] = backbone.arch_args()
    preprocessor = cfg.model.get('data_preprocessor')
    if preprocessor:
        meta['data_preprocessor'] = {k: preprocessor[k] for k in
                                     ('mean', 'std', 'bgr_to_rgb') if k in preprocessor}
    old_meta = checkpoint.get('meta') or {}
    meta.update({k: old_meta[k] for k in ('epoch', 'iter') if k in old_meta})
    torch.save(dict(state_dict=state_dict, meta=meta), dst)
    return meta
