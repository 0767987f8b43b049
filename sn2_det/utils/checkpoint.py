"""Checkpoint loading under ``torch.load(weights_only=True)``, with clear errors.

torch >= 2.6 unpickles only allow-listed types by default, and mmengine 0.10.7 calls
``torch.load`` without arguments, so its own training checkpoints (which hold
``HistoryBuffer`` objects and numpy arrays) no longer load. Rather than turn the
safety off, ``sn2_det`` replaces mmengine's loader for local paths with one that keeps
``weights_only=True`` and allows exactly the types mmengine writes, inside the load
only (``builtins.getattr`` is among them: ``HistoryBuffer`` pickles a reference to
its own statistics methods; the unpickler still calls nothing outside the list).

The loader also remembers the file name and ``meta`` of the last few checkpoints it
read (:func:`loaded_from`), so that a check where mmengine hands over only the state
dict (:mod:`sn2_det.apis.detector_checkpoint`) can name the file and read its meta.
"""
import collections
import os.path as osp
import weakref
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from .errors import MissingFileError, SN2DetError


class CheckpointError(SN2DetError, ValueError):
    """A checkpoint file that cannot be read, or does not fit the model."""


# (weak reference to one tensor of the state dict, file name, meta), newest last
_RECENT_LOADS = collections.deque(maxlen=4)


def _state_dict_of(checkpoint):
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) \
        else None
    return state if isinstance(state, dict) else {}


def _remember(filename: str, checkpoint) -> None:
    tensor = next((v for v in _state_dict_of(checkpoint).values()
                   if isinstance(v, torch.Tensor)), None)
    if tensor is not None:
        meta = checkpoint.get('meta') if isinstance(checkpoint.get('meta'), dict) else {}
        _RECENT_LOADS.append((weakref.ref(tensor), filename, meta))


def loaded_from(state_dict: Dict[str, torch.Tensor]) -> Tuple[Optional[str], dict]:
    """The file and ``meta`` of the checkpoint that ``state_dict``'s tensors were read
    from by this module's loader (mmengine's key renaming keeps the tensors), or
    ``(None, {})``."""
    ids = {id(v) for v in state_dict.values() if isinstance(v, torch.Tensor)}
    for ref, filename, meta in reversed(_RECENT_LOADS):
        tensor = ref()
        if tensor is not None and id(tensor) in ids:
            return filename, meta
    return None, {}


def _mmengine_checkpoint_globals() -> list:
    numpy_dtypes = [type(np.dtype(name)) for name in (
        'float64', 'float32', 'float16', 'int64', 'int32', 'int16', 'int8', 'uint8',
        'bool')]
    return [HistoryBuffer, getattr, np.ndarray, np.dtype, *numpy_dtypes,
            np._core.multiarray._reconstruct, np._core.multiarray.scalar]


def safe_torch_load(filename: str, map_location='cpu'):
    """``torch.load`` with ``weights_only=True`` that also reads mmengine checkpoints.

    A missing file raises FileNotFoundError; a truncated, foreign or malicious
    file raises CheckpointError naming the file and the reason.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise MissingFileError(f'checkpoint {filename} does not exist')
    try:
        with torch.serialization.safe_globals(_mmengine_checkpoint_globals()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except Exception as err:  # whatever a damaged or hostile file makes pickle raise
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f'cannot load checkpoint {filename}: {reason}. It is truncated, not a '
            f'PyTorch checkpoint, or holds objects outside the allow-list of '
            f'sn2_det.utils.checkpoint (those are never unpickled).') from err


def load_from_local_safely(filename: str, map_location=None):
    """mmengine checkpoint scheme for local paths (see module docstring)."""
    checkpoint = safe_torch_load(filename, map_location)
    _remember(filename, checkpoint)
    return checkpoint


def register_safe_local_loader() -> None:
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_safely,
                                     force=True)


def strip_prefix(state_dict: Dict[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    """Keep the keys under ``prefix`` with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def check_state_dict_fits(module: torch.nn.Module, state_dict: Dict[str, torch.Tensor],
                          source: str) -> None:
    """Raise CheckpointError listing missing, unexpected and mis-shaped keys."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = [f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}'
              for k in own if k in state_dict and state_dict[k].shape != own[k].shape]
    if not (missing or unexpected or shapes):
        return
    parts = []
    for title, rows in (('shape mismatches', shapes), ('missing keys', missing),
                        ('unexpected keys', unexpected)):
        if rows:
            listed = '\n    '.join(rows[:10])
            more = f'\n    ... and {len(rows) - 10} more' if len(rows) > 10 else ''
            parts.append(f'  {len(rows)} {title}:\n    {listed}{more}')
    raise CheckpointError(f'checkpoint {source} does not fit {type(module).__name__}:\n'
                          + '\n'.join(parts))


def load_backbone_checkpoint(module: torch.nn.Module, filename: str,
                             prefix: Optional[str] = None) -> None:
    """Load a backbone checkpoint strictly, checking its recorded architecture.

    Checkpoints written by ``tools/convert_weights.py`` record the constructor
    arguments they need in ``meta['backbone']``; these must equal the module's
    ``arch_args()``. Keys under ``prefix`` (e.g. 'backbone.') are taken when given.
    """
    checkpoint = CheckpointLoader.load_checkpoint(filename, map_location='cpu')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if prefix:
        state_dict = strip_prefix(state_dict, prefix)
    meta = checkpoint.get('meta') or {}
    wanted = meta.get('backbone')
    if wanted and hasattr(module, 'arch_args'):
        have = module.arch_args()
        diff = {k: v for k, v in wanted.items() if have.get(k) != v}
        if diff:
            raise CheckpointError(
                f'checkpoint {filename} was made for backbone {wanted}; the model is '
                f'built with {have}. Set ' +
                ', '.join(f'{k}={v!r}' for k, v in diff.items()) +
                ' in the backbone config to use it.')
    check_state_dict_fits(module, state_dict, filename)
    module.load_state_dict(state_dict, strict=True)
