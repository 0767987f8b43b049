"""Detector checkpoints load only where they fit the detector.

mmengine's loaders (the Runner's ``load_from`` and ``resume``, ``load_checkpoint``,
mmdet's ``init_detector`` and ``DetInferencer``) load a state dict non-strictly: what
does not fit is a warning, and the model keeps random weights there. Where the
weights are the result (test, inference, export, benchmarks) that runs a partly
random detector. Here every load into a whole mmdet detector is checked first:

- **strict**, everywhere except below: a checkpoint that does not fit is a
  :class:`CheckpointError` naming the config, how many keys do not fit, the first
  ones with both shapes and, where the checkpoint's ``meta`` records its training run
  (mmengine writes ``experiment_name`` and ``cfg``), the config it was trained with.
  A checkpoint that fits must also agree with the classes its ``meta`` records
  (``meta['dataset_meta']['classes']``): their number is each head's
  ``num_classes``, and in ``Runner.test`` they are the test dataset's classes.
- **fine-tuning**, ``Runner.train`` with ``load_from`` (not resuming): tensors of the
  final classification / regression layers (:data:`PREDICTOR_LAYERS`) that do not
  fit (another class count) keep their initialisation, and one line says which;
  anything else that does not fit is a CheckpointError (a backbone of another width
  is a mistake, not a fine-tune).

``import sn2_det`` routes mmengine's ``load_state_dict``, which all those loaders end
in, through the check (:func:`guard_detector_loading`), so mmdet's own tools and
``DetInferencer`` get it too. mmengine tells a load nothing about whether its Runner
trains or tests, so the check looks for ``Runner.train`` / ``val`` / ``test`` on the
call stack. The file name and ``meta`` come from sn2_det's checkpoint loader
(:func:`sn2_det.utils.checkpoint.loaded_from`).
"""
import contextlib
import contextvars
import functools
import logging
import os
import os.path as osp
import re
import sys
from collections import OrderedDict
from typing import Dict, List, NamedTuple, Optional, Tuple

from mmengine.logging import print_log
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner import checkpoint as mmengine_checkpoint

from mmdet.models.detectors import BaseDetector

from ..utils.checkpoint import CheckpointError, loaded_from
from ..utils.config import CONFIG_DIR
from ..utils.config import shipped_configs as shipped_config_names
from .class_check import CLASS_AGNOSTIC, head_class_counts, shown_classes

# Final classification / regression layers of mmdet's heads: what a fine-tune to
# another class count may leave at their initialisation.
PREDICTOR_LAYERS = ('fc_cls', 'fc_reg', 'rpn_cls', 'rpn_reg', 'retina_cls', 'retina_reg',
                    'conv_cls', 'conv_reg')
SHOWN = 5  # mismatched keys listed in a message

_config = contextvars.ContextVar('sn2_det_detector_config', default=None)


class Fit(NamedTuple):
    """How a state dict fits a model: (key, checkpoint shape, model shape) of each key
    whose shapes differ, (key, model shape) of keys the checkpoint lacks, (key,
    checkpoint shape) of keys the model lacks."""
    shapes: List[Tuple[str, tuple, tuple]]
    missing: List[Tuple[str, tuple]]
    unexpected: List[Tuple[str, tuple]]

    @property
    def ok(self) -> bool:
        return not (self.shapes or self.missing or self.unexpected)

    def keys(self) -> List[str]:
        return [row[0] for rows in self for row in rows]


def _shape(value) -> tuple:
    return tuple(getattr(value, 'shape', ()))


def compare_state_dicts(model_state: Dict, state_dict: Dict) -> Fit:
    """The :class:`Fit` of ``state_dict`` to ``model_state`` (a missing BN
    ``num_batches_tracked`` counts as fitting, as in mmengine)."""
    shapes = [(k, _shape(state_dict[k]), _shape(v)) for k, v in model_state.items()
              if k in state_dict and _shape(state_dict[k]) != _shape(v)]
    missing = [(k, _shape(v)) for k, v in model_state.items()
               if k not in state_dict and not k.endswith('num_batches_tracked')]
    unexpected = [(k, _shape(v)) for k, v in state_dict.items() if k not in model_state]
    return Fit(shapes, missing, unexpected)


def is_predictor(key: str) -> bool:
    return any(part in PREDICTOR_LAYERS for part in key.split('.')[:-1])


def describe_misfit(fit: Fit) -> str:
    """'N keys do not fit (a of another shape, ...); first: key: checkpoint (..) vs
    model (..), ...', listing the first key of each of the first modules."""
    counts = ', '.join(f'{len(rows)} {what}' for rows, what in (
        (fit.shapes, 'of another shape'), (fit.missing, 'missing from the checkpoint'),
        (fit.unexpected, 'not in the model')) if rows)
    rows = ([(k, f'{k}: checkpoint {c} vs model {m}') for k, c, m in fit.shapes]
            + [(k, f'{k}: model {m}, not in the checkpoint') for k, m in fit.missing]
            + [(k, f'{k}: checkpoint {c}, not in the model') for k, c in fit.unexpected])
    shown, modules = [], set()
    for key, row in rows:  # the first key of each module (a BN has five)
        module = key.rsplit('.', 1)[0]
        if module not in modules and len(shown) < SHOWN:
            modules.add(module)
            shown.append(row)
    more = f', ... ({len(rows) - len(shown)} more)' if len(rows) > len(shown) else ''
    return f'{len(rows)} keys do not fit ({counts}); first: {", ".join(shown)}{more}'


def shipped_configs() -> Dict[str, str]:
    """Config file stem -> path of the configs shipped with sn2_det (in a clone,
    ``sn2_det/.mim/configs`` is a link to ``configs/``, which the path names)."""
    found = {}
    for name in shipped_config_names():
        if not osp.basename(name).startswith('_'):
            found.setdefault(osp.splitext(osp.basename(name))[0],
                             _short(osp.realpath(osp.join(CONFIG_DIR, name))))
    return found


def _short(path: str) -> str:
    rel = osp.relpath(path)
    return path if rel.startswith('..') else rel


def _model_summary(cfg_text) -> str:
    """'LightHeadRCNN, backbone ShuffleNetV2 widen_factor=0.5, ...num_classes=3' from
    the config text mmengine stores in a checkpoint, or '' when it does not parse."""
    if not isinstance(cfg_text, str):
        return ''
    try:
        from mmengine.config import Config
        model = Config.fromstring(cfg_text, file_format='.py').get('model') or {}
    except Exception:  # a config of another code base, or of another version
        return ''
    backbone = model.get('backbone') or {}
    parts = [str(model.get('type', ''))]
    if backbone.get('type'):
        arch = ''.join(f' {k}={backbone[k]}' for k in ('widen_factor', 'depth', 'level',
                                                        'name') if k in backbone)
        parts.append(f'backbone {backbone["type"]}{arch}')
    parts += [f'{k}={v}' for k, v in head_class_counts(model).items()]
    return ', '.join(p for p in parts if p)


def trained_with(meta: dict) -> str:
    """Where ``meta`` records it: 'configs/toy/x.py (experiment x_2026..; LightHeadRCNN,
    ...)', the config the checkpoint was trained with; else ''."""
    name = meta.get('experiment_name')
    base = re.sub(r'_\d{8}_\d{6}$', '', name) if isinstance(name, str) else ''
    config = shipped_configs().get(base) or (f'a config named {base}.py' if base else '')
    details = '; '.join(p for p in (f'experiment {name}' if name else '',
                                    _model_summary(meta.get('cfg'))) if p)
    if not (config or details):
        return ''
    return f'{config or "a config"} ({details})' if details else config


def model_class_counts(detector) -> Dict[str, int]:
    """``num_classes`` of each head module of a built detector, by config key."""
    return {f'model.{name}.num_classes': module.num_classes
            for name, module in detector.named_modules()
            if name and name.split('.')[0] not in CLASS_AGNOSTIC
            and isinstance(getattr(module, 'num_classes', None), int)}


def _classes_of(dataset) -> Optional[tuple]:
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    return tuple(classes) if classes else None


def check_checkpoint_classes(detector, meta: dict, source: str, config: str,
                             test_classes: Optional[tuple] = None) -> None:
    """The classes of the checkpoint's ``meta`` against the detector's heads, and
    against the classes of the dataset it is tested on (``test_classes``)."""
    classes = (meta.get('dataset_meta') or {}).get('classes')
    if not classes:
        return
    classes = tuple(classes)
    shown = shown_classes(classes)
    for key, count in model_class_counts(detector).items():
        if count != len(classes):
            raise CheckpointError(
                f'{source} records {len(classes)} classes (meta dataset_meta.classes: '
                f'{shown}), but {key} = {count} in {config}, as in the checkpoint: it was '
                f'trained with a head that did not fit its dataset, so its labels have '
                f'no names; train again with {key}={len(classes)}')
    if test_classes is not None and test_classes != classes:
        raise CheckpointError(
            f'test_dataloader.dataset of {config} has the classes {test_classes}, but '
            f'{source} was trained on {classes} (meta dataset_meta.classes): its labels '
            f'would be scored as other classes; set test_dataloader.dataset.metainfo='
            f'dict(classes={classes})')


def _calling_runner():
    """(runner, 'train' | 'val' | 'test') of the mmengine Runner method this load runs
    in, or (None, None)."""
    from mmengine.runner import Runner
    methods = {Runner.train.__code__: 'train', Runner.val.__code__: 'val',
               Runner.test.__code__: 'test'}
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code in methods:
            return frame.f_locals.get('self'), methods[frame.f_code]
        frame = frame.f_back
    return None, None


def _config_name(detector, runner) -> str:
    name = _config.get()
    for cfg in (getattr(runner, 'cfg', None), getattr(detector, 'cfg', None)):
        name = name or getattr(cfg, 'filename', None)
    return _short(name) if name else 'the config'


def check_detector_state_dict(detector, state_dict: Dict, fine_tune: bool = False,
                              runner=None, test: bool = False) -> Dict:
    """The state dict to load into ``detector`` (see the module docstring), or raise
    CheckpointError. With ``fine_tune``, predictor tensors that do not fit are
    replaced by the detector's own."""
    filename, meta = loaded_from(state_dict)
    source = f'checkpoint {_short(filename)}' if filename else 'the checkpoint'
    config = _config_name(detector, runner)
    model_state = detector.state_dict()
    fit = compare_state_dicts(model_state, state_dict)
    if fit.ok:
        if not fine_tune:
            test_classes = _classes_of(getattr(runner.test_dataloader, 'dataset', None)) \
                if test and runner is not None else None
            check_checkpoint_classes(detector, meta, source, config, test_classes)
        return state_dict
    trained = trained_with(meta)
    hint = f' It was trained with {trained}.' if trained else ''
    if not fine_tune:
        raise CheckpointError(
            f'{source} does not fit the detector of {config}: {describe_misfit(fit)}.'
            f'{hint} Use the config it was trained with, or a checkpoint of {config}.')
    others = Fit(*([row for row in rows if not is_predictor(row[0])] for rows in fit))
    if not others.ok:
        raise CheckpointError(
            f'load_from {source} cannot fine-tune the detector of {config}: besides the '
            f'final classification / regression layers, {describe_misfit(others)}. A '
            f'fine-tune skips only those layers ({", ".join(PREDICTOR_LAYERS)}; another '
            f'class count); a backbone or neck of another size is another model. Backbone '
            f'weights alone go in model.backbone.init_cfg=dict(type=\'Pretrained\', '
            f'checkpoint=...).{hint}')
    skipped = [k for k, _, _ in fit.shapes] + [k for k, _ in fit.missing]
    loaded = OrderedDict((k, v) for k, v in state_dict.items() if k in model_state)
    loaded.update((k, model_state[k]) for k in skipped)
    if hasattr(state_dict, '_metadata'):
        loaded._metadata = state_dict._metadata
    what = ([f'{k} {c} -> {m}' for k, c, m in fit.shapes]
            + [f'{k} (not in the checkpoint)' for k, _ in fit.missing])
    ignored = (f'; ignored {len(fit.unexpected)} keys not in the model: '
               + ', '.join(k for k, _ in fit.unexpected)) if fit.unexpected else ''
    print_log(f'load_from {source}: fine-tuning the detector of {config}: loaded '
              f'{len(model_state) - len(skipped)} of {len(model_state)} tensors, skipped '
              f'{len(skipped)} of the final layers that do not fit (another class count; '
              f'they keep their initialisation): {", ".join(what)}{ignored}',
              logger='current', level=logging.WARNING)
    return loaded


def _unwrap(module):
    while is_model_wrapper(module) or isinstance(module, BaseTTAModel):
        module = module.module
    return module


def guard_detector_loading() -> None:
    """Route mmengine's ``load_state_dict`` through :func:`check_detector_state_dict`
    for whole detectors (done by ``import sn2_det``; idempotent)."""
    original = mmengine_checkpoint.load_state_dict
    if getattr(original, 'sn2_det_checked', False):
        return

    @functools.wraps(original)
    def checked_load_state_dict(module, state_dict, strict=False, logger=None):
        detector = _unwrap(module)
        if isinstance(detector, BaseDetector) and isinstance(state_dict, dict):
            runner, method = _calling_runner()
            fine_tune = (method == 'train' and not strict
                         and not getattr(runner, '_resume', False))
            state_dict = check_detector_state_dict(detector, state_dict, fine_tune,
                                                   runner, test=method == 'test')
        return original(module, state_dict, strict, logger)

    checked_load_state_dict.sn2_det_checked = True
    mmengine_checkpoint.load_state_dict = checked_load_state_dict


@contextlib.contextmanager
def detector_config(config):
    """Name ``config`` (a path or a Config) in the errors of the loads inside."""
    name = config if isinstance(config, (str, os.PathLike)) else getattr(config, 'filename',
                                                                          None)
    token = _config.set(str(name) if name else None)
    try:
        yield
    finally:
        _config.reset(token)


def load_detector_checkpoint(model, filename: str, config=None,
                             map_location='cpu') -> dict:
    """Load a detector checkpoint strictly (see the module docstring); errors name
    ``config``. Returns the checkpoint."""
    with detector_config(config):
        return mmengine_checkpoint.load_checkpoint(model, filename,
                                                   map_location=map_location, strict=True)


def init_checked_detector(config, checkpoint: Optional[str], device: str = 'cpu',
                          cfg_options: Optional[dict] = None):
    """mmdet's ``init_detector``, its checkpoint checked (errors name ``config``)."""
    from mmdet.apis import init_detector
    with detector_config(config):
        return init_detector(config, checkpoint, device=device, cfg_options=cfg_options)
