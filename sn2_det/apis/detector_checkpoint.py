"""Detector checkpoints load only where they fit the detector.

mmengine's loaders (the Runner's ``load_from`` and ``resume``, ``load_checkpoint``,
mmdet's ``init_detector`` and ``DetInferencer``) load a state dict non-strictly: what
does not fit is a warning, and the model keeps random weights there. Where the
weights are the result (test, inference, export, benchmarks) that runs a partly
random detector. Here every load of a whole detector states its purpose
(:data:`PURPOSES`) and is checked first:

- ``'evaluate'`` (test, val, inference, export, benchmarks) and ``'resume'``:
  **strict**. A checkpoint that does not fit is a :class:`CheckpointError` naming the
  file, the config, how many keys do not fit, the first ones with both shapes and,
  where the checkpoint's ``meta`` records its training run (mmengine writes
  ``experiment_name`` and ``cfg``), the config it was trained with (read from the
  stored text without executing it, :func:`sn2_det.utils.checkpoint.stored_config`).
  A checkpoint that fits must also agree with the classes its ``meta`` records
  (``meta['dataset_meta']['classes']``): their number is each head's
  ``num_classes``, and in a test they are the test dataset's classes.
- ``'fine-tune'`` (training with ``load_from``, not resuming): tensors of the final
  classification / regression layers (:data:`PREDICTOR_LAYERS`) that do not fit
  (another class count) keep their initialisation, and one line says which; anything
  else that does not fit is a CheckpointError (a backbone of another width is a
  mistake, not a fine-tune).
- every purpose: weights holding a NaN or an infinity are a CheckpointError naming
  the file and the first such tensor.

Who loads states the purpose: sn2_det's Runner (:mod:`sn2_det.engine.runner`, named by
``runner_type`` in the shipped configs, so mmdet's tools/train.py and tools/test.py
use it too), and sn2_det's tools through :func:`load_detector_checkpoint`. Loads
outside both (mmdet's ``init_detector``, ``DetInferencer``, mmengine's
``load_checkpoint``) meet :func:`refuse_misfit_state_dict`, a state-dict pre-hook
that :class:`~sn2_det.models.detectors.LightHeadRCNN` registers on itself: strict,
without the file name (mmengine does not pass it on). docs/development.md lists these
extension points.
"""
import logging
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from mmengine.logging import print_log
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner.checkpoint import CheckpointLoader, load_state_dict

from mmdet.models.detectors import BaseDetector

from ..utils.checkpoint import CheckpointError, first_non_finite, stored_config
from ..utils.config import CONFIG_DIR
from ..utils.config import shipped_configs as shipped_config_names
from .class_check import CLASS_AGNOSTIC, head_class_counts, shown_classes

# Final classification / regression layers of mmdet's heads: what a fine-tune to
# another class count may leave at their initialisation.
PREDICTOR_LAYERS = ('fc_cls', 'fc_reg', 'rpn_cls', 'rpn_reg', 'retina_cls', 'retina_reg',
                    'conv_cls', 'conv_reg')
SHOWN = 5  # mismatched keys listed in a message
# What a load is for: see the module docstring.
PURPOSES = ('evaluate', 'resume', 'fine-tune')


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
    the config text mmengine stores in a checkpoint (read, never executed), or ''."""
    model = stored_config(cfg_text).get('model')
    if not isinstance(model, dict):
        return ''
    backbone = model.get('backbone') if isinstance(model.get('backbone'), dict) else {}
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


def _unwrap(module):
    while is_model_wrapper(module) or isinstance(module, BaseTTAModel):
        module = module.module
    return module


def _config_name(config) -> str:
    name = config if isinstance(config, (str, os.PathLike)) else getattr(config, 'filename',
                                                                          None)
    return _short(str(name)) if name else 'the config'


def _refuse_non_finite(state_dict: Dict, source: str) -> None:
    key = first_non_finite(state_dict)
    if key is not None:
        raise CheckpointError(
            f'{source} holds non-finite weights (NaN or infinity), first in {key}: the '
            f'training it comes from diverged; use an earlier checkpoint of that run')


def check_detector_state_dict(detector, state_dict: Dict, purpose: str = 'evaluate',
                              source: str = 'the checkpoint', config=None,
                              meta: Optional[dict] = None,
                              test_classes: Optional[Sequence[str]] = None) -> Dict:
    """The state dict to load into ``detector`` for ``purpose`` (one of
    :data:`PURPOSES`, see the module docstring), or raise CheckpointError naming
    ``source`` and ``config``. For a fine-tune, predictor tensors that do not fit are
    replaced by the detector's own. ``test_classes``: the classes of the dataset the
    detector is evaluated on."""
    if purpose not in PURPOSES:
        raise ValueError(f'purpose must be one of {PURPOSES}, got {purpose!r}')
    meta = meta if isinstance(meta, dict) else {}
    config = _config_name(config)
    _refuse_non_finite(state_dict, source)
    model_state = detector.state_dict()
    fit = compare_state_dicts(model_state, state_dict)
    if fit.ok:
        if purpose != 'fine-tune':
            check_checkpoint_classes(detector, meta, source, config,
                                     tuple(test_classes) if test_classes else None)
        return state_dict
    trained = trained_with(meta)
    hint = f' It was trained with {trained}.' if trained else ''
    if purpose != 'fine-tune':
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


def refuse_misfit_state_dict(module, state_dict, prefix, local_metadata, strict,
                             missing_keys, unexpected_keys, error_msgs) -> None:
    """State-dict pre-hook of a detector (``register_load_state_dict_pre_hook``): the
    keys under ``prefix`` must fit the detector exactly and be finite, whoever loads
    them and however (mmengine loads non-strictly). Loads that fine-tune go through
    :func:`check_detector_state_dict` first, which hands over a fitting state dict."""
    own = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    config = getattr(getattr(module, 'cfg', None), 'filename', None)
    check_detector_state_dict(module, own, 'evaluate', 'the checkpoint', config)


def read_detector_checkpoint(model, filename: str, purpose: str = 'evaluate', config=None,
                             map_location='cpu',
                             test_classes: Optional[Sequence[str]] = None,
                             revise_keys=((r'^module\.', ''),)) -> dict:
    """Read checkpoint ``filename`` (through mmengine's ``CheckpointLoader``, so
    sn2_det's safe loader for local files) and check its state dict for loading into
    ``model`` for ``purpose`` (:func:`check_detector_state_dict`; a model that is not
    a detector: only finite weights). Returns the checkpoint, its ``state_dict`` the
    one to load. ``meta['config']`` (the config text of old mmengine checkpoints,
    which mmengine's ``Runner.resume`` would execute) is dropped."""
    checkpoint = CheckpointLoader.load_checkpoint(filename, map_location=map_location)
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f'checkpoint {filename} holds no state dict')
    if isinstance(checkpoint.get('meta'), dict):
        checkpoint['meta'].pop('config', None)
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, dict):
        raise CheckpointError(f'checkpoint {filename} holds no state dict')
    metadata = getattr(state_dict, '_metadata', OrderedDict())
    for pattern, replacement in revise_keys:
        state_dict = OrderedDict((re.sub(pattern, replacement, k), v)
                                 for k, v in state_dict.items())
    state_dict._metadata = metadata
    source = f'checkpoint {_short(str(filename))}'
    detector = _unwrap(model)
    if isinstance(detector, BaseDetector):
        state_dict = check_detector_state_dict(detector, state_dict, purpose, source,
                                               config, checkpoint.get('meta'),
                                               test_classes)
    else:
        _refuse_non_finite(state_dict, source)
    if 'state_dict' in checkpoint:
        checkpoint['state_dict'] = state_dict
    else:
        checkpoint = dict(state_dict=state_dict)
    return checkpoint


def load_detector_checkpoint(model, filename: str, config, *, purpose: str,
                             map_location='cpu',
                             test_classes: Optional[Sequence[str]] = None) -> dict:
    """Load checkpoint ``filename`` into ``model`` for ``purpose`` (one of
    :data:`PURPOSES`; errors name ``config``, a path or Config): the one way sn2_det's
    tools load weights. Returns the checkpoint."""
    checkpoint = read_detector_checkpoint(model, filename, purpose, config, map_location,
                                          test_classes)
    load_state_dict(_unwrap(model), checkpoint['state_dict'], strict=True)
    return checkpoint


def init_checked_detector(config, checkpoint: Optional[str], device: str = 'cpu',
                          cfg_options: Optional[dict] = None):
    """mmdet's ``init_detector``, its checkpoint loaded for evaluation by
    :func:`load_detector_checkpoint` (errors name ``config``); ``dataset_meta`` from the
    checkpoint's meta as ``init_detector`` sets it."""
    import warnings

    from mmdet.apis import init_detector
    with warnings.catch_warnings(record=True) as caught:  # init_detector resets filters
        model = init_detector(config, None, device='cpu', cfg_options=cfg_options)
    for warning in caught:  # all but "checkpoint is None": the checkpoint comes next
        if checkpoint is None or 'checkpoint is None' not in str(warning.message):
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
    if checkpoint is not None:
        meta = load_detector_checkpoint(model, checkpoint, config,
                                        purpose='evaluate').get('meta') or {}
        dataset_meta = meta.get('dataset_meta')
        if isinstance(dataset_meta, dict):
            palette = model.dataset_meta.get('palette')
            model.dataset_meta = {k.lower(): v for k, v in dataset_meta.items()}
            if palette is not None and 'palette' not in model.dataset_meta:
                model.dataset_meta['palette'] = palette
        elif 'CLASSES' in meta:
            model.dataset_meta = dict(model.dataset_meta, classes=meta['CLASSES'])
    return model.to(device).eval()
