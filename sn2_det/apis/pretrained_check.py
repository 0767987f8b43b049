"""Before training: frozen backbone layers have pretrained weights, and those weights
see the input normalisation they were trained with.

Two refusals, each a :class:`PretrainedWeightsError` naming the config key to change:

- layers frozen (``frozen_stages >= 0``, BN without gradients) while
  ``model.backbone.init_cfg`` loads no pretrained weights (or names a file that is
  not there): the run would train on top of random layers that never change. The
  message says how to make the checkpoint (``tools/convert_weights.py`` for public
  ShuffleNet V2 weights, or pretraining with ``configs/pretrain`` and
  ``tools/extract_backbone.py``) and which keys train the backbone from scratch.
- the checkpoint's ``meta['data_preprocessor']`` (written by both tools) differs from
  ``model.data_preprocessor``: the message names the values the weights need. They
  are not adopted silently: the config says what the detector trains with.

:func:`check_pretrained_backbone` runs in ``sn2_det.apis.runner.train`` before the
runner is built; :class:`PretrainedBackboneCheckHook` (in the shipped configs'
``custom_hooks``) runs the same check at ``before_run``, before the weights are
initialised, when a config is trained by mmdet's own ``tools/train.py``. A run that
loads a whole detector (``load_from``, ``resume``) is not checked: its backbone
weights come from that checkpoint.
"""
import glob
import os.path as osp
from typing import List, Optional

import numpy as np
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.runner import BaseLoop
from mmengine.runner.checkpoint import CheckpointLoader
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import HOOKS, MODELS

from .. import models  # noqa: F401  (registers the backbones)
from ..utils.errors import PretrainedWeightsError

NORM_KEYS = ('mean', 'std', 'bgr_to_rgb')
FROM_SCRATCH = ('model.backbone.init_cfg=None model.backbone.frozen_stages=-1 '
                'model.backbone.norm_eval=False model.backbone.norm_cfg.requires_grad=True')
CONFIG_ROOT = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                       'configs')


def _frozen_parts(backbone) -> List[str]:
    """What of ``backbone`` stays as initialised: the top-level parts (``conv1``,
    ``layers.N``) with frozen parameters other than BN's, frozen BN affine parameters,
    fixed BN statistics (``norm_eval``)."""
    parts, bn_frozen = [], False
    for name, module in backbone.named_modules():
        own = list(module.parameters(recurse=False))
        if not own or any(p.requires_grad for p in own):
            continue
        if isinstance(module, _BatchNorm):
            bn_frozen = True
            continue
        top = name.split('.')
        part = '.'.join(top[:2]) if isinstance(getattr(backbone, top[0]), nn.ModuleList) \
            else top[0]
        if part not in parts:
            parts.append(part)
    if bn_frozen:
        parts.append('the BN weights (norm_cfg.requires_grad=False)')
    if getattr(backbone, 'norm_eval', False):
        parts.append('the BN statistics (norm_eval=True)')
    return parts


def _how_to_make(checkpoint: Optional[str]) -> str:
    """How to write the checkpoint file ``checkpoint``: a pretraining config of the
    same name (``configs/pretrain/**/NAME.py``) if there is one, else both routes."""
    name = osp.splitext(osp.basename(checkpoint or ''))[0]
    configs = sorted(glob.glob(osp.join(CONFIG_ROOT, 'pretrain', '**', f'{name}.py'),
                               recursive=True)) if name else []
    target = checkpoint or 'checkpoints/NAME.pth'
    if configs:
        config = osp.relpath(configs[0], osp.dirname(CONFIG_ROOT))
        return (f'pretrain it on ImageNet (docs/table7.md): tools/dist_train.sh '
                f'{config} 8, then python tools/extract_backbone.py '
                f'work_dirs/{name}/epoch_N.pth {target}')
    return (f'convert published ImageNet weights with python tools/convert_weights.py '
            f'SRC.pth {target} (ShuffleNet V2: the authors\' ShuffleNetV2.1.0x.pth.tar, '
            f'torchvision\'s or mmpretrain\'s; docs/backbone.md), or pretrain '
            f'with a configs/pretrain config and python tools/extract_backbone.py '
            f'(docs/table7.md)')


def _is_local(checkpoint: str) -> bool:
    return '://' not in checkpoint


def _recorded_normalisation(checkpoint: str) -> Optional[dict]:
    loaded = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    meta = loaded.get('meta') if isinstance(loaded, dict) else None
    recorded = (meta or {}).get('data_preprocessor')
    return {k: recorded[k] for k in NORM_KEYS if k in recorded} if recorded else None


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a) == bool(b)
    return np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float))


def check_normalisation(preprocessor: dict, recorded: dict, checkpoint: str) -> None:
    """Raise unless ``preprocessor`` (``model.data_preprocessor``) normalises input as
    the weights in ``checkpoint`` were trained (``recorded``, from its meta)."""
    have = {k: preprocessor.get(k, False if k == 'bgr_to_rgb' else None)
            for k in recorded}
    diff = [k for k in recorded if have[k] is None or not _same(have[k], recorded[k])]
    if diff:
        need = ', '.join(f'{k}={recorded[k]!r}' for k in recorded)
        got = ', '.join(f'{k}={have[k]!r}' for k in diff)
        raise PretrainedWeightsError(
            f'model.data_preprocessor does not normalise input as the backbone weights '
            f'{checkpoint} were trained: it has {got}; the weights need {need}. Set '
            f'these in model.data_preprocessor (or use weights trained with yours; '
            f'torchvision/mmpretrain ShuffleNet V2 weights: configs/lighthead_sn2_tv.py)')


def check_pretrained_backbone(cfg) -> None:
    """The two refusals of the module docstring, for ``cfg`` (an mmengine Config)."""
    model = cfg.get('model') or {}
    if 'backbone' not in model or cfg.get('load_from') or cfg.get('resume'):
        return
    backbone_cfg = model['backbone']
    backbone_cfg = backbone_cfg.to_dict() if hasattr(backbone_cfg, 'to_dict') \
        else dict(backbone_cfg)
    backbone = MODELS.build(backbone_cfg)
    init_cfg = getattr(backbone, 'init_cfg', None)  # Table7Backbone: the cell's
    pretrained = isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained'
    checkpoint = init_cfg.get('checkpoint') if pretrained else None
    frozen = _frozen_parts(backbone)
    if frozen and not pretrained:
        raise PretrainedWeightsError(
            f'model.backbone freezes {", ".join(frozen)}, but model.backbone.init_cfg '
            f'({backbone_cfg.get("init_cfg")!r}) loads no pretrained weights: those stay at '
            f'their random initialisation for the whole run. Set model.backbone.'
            f"init_cfg=dict(type='Pretrained', checkpoint='checkpoints/NAME.pth') and "
            f'{_how_to_make(None)}; or train the backbone from scratch instead: '
            f'--cfg-options {FROM_SCRATCH}')
    if not pretrained or not isinstance(checkpoint, str) or not _is_local(checkpoint):
        return
    if not osp.isfile(osp.expanduser(checkpoint)):
        raise PretrainedWeightsError(
            f"model.backbone.init_cfg.checkpoint '{checkpoint}' does not exist. To make "
            f'it, {_how_to_make(checkpoint)}. Or train the backbone from scratch '
            f'instead: --cfg-options {FROM_SCRATCH}')
    recorded = _recorded_normalisation(checkpoint)
    if recorded and 'data_preprocessor' in model:
        check_normalisation(model['data_preprocessor'], recorded, checkpoint)


@HOOKS.register_module()
class PretrainedBackboneCheckHook(Hook):
    """:func:`check_pretrained_backbone` at ``before_run`` (mmengine calls it before
    it initialises the weights), for runs started by mmdet's own ``tools/train.py``."""

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        if isinstance(runner._train_loop, BaseLoop):  # a training run (not test / val)
            check_pretrained_backbone(runner.cfg)
