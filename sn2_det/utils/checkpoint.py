"""Checkpoint loading under ``torch.load(weights_only=True)``, with clear errors.

torch >= 2.6 unpickles only allow-listed types by default, and mmengine 0.10.7 calls
``torch.load`` without arguments, so its own training checkpoints (which hold
``HistoryBuffer`` objects and numpy arrays) no longer load. Rather than turn the
safety off, ``sn2_det`` replaces mmengine's loader for local paths with one that keeps
``weights_only=True`` and allows exactly the types mmengine writes, inside the load
only (``builtins.getattr`` is among them: ``HistoryBuffer`` pickles a reference to
its own statistics methods; the unpickler still calls nothing outside the list).

The training config that mmengine stores in a checkpoint (``meta['cfg']``, the
config's ``pretty_text``) is Python text from the file: :func:`stored_config` reads
its literal assignments with :mod:`ast` and never executes any of it.
"""
import ast
import os.path as osp
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from .errors import MissingFileError, SN2DetError


class CheckpointError(SN2DetError, ValueError):
    """A checkpoint file that cannot be read, or does not fit the model."""


def _literal(node):
    """The value of a literal expression: constants, tuples, lists, dicts, sets, a
    negative number and ``dict(key=literal, ...)`` (how ``pretty_text`` writes a
    dict); anything else raises ValueError."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id == 'dict' and not node.args \
            and all(k.arg is not None for k in node.keywords):
        return {k.arg: _literal(k.value) for k in node.keywords}
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e) for e in node.elts)
    if isinstance(node, ast.List):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    return ast.literal_eval(node)  # constants, sets, -1, 1e-3 (raises ValueError)


def stored_config(text) -> dict:
    """The top-level ``name = literal`` assignments of config text (a checkpoint's
    ``meta['cfg']``), read without executing anything; assignments of anything else
    (a call, a name, an import) are left out, and text that does not parse gives {}."""
    if not isinstance(text, str):
        return {}
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = _literal(node.value)
            except (ValueError, TypeError, SyntaxError, RecursionError):
                continue
    return found


def first_non_finite(state_dict) -> Optional[str]:
    """The key of the first floating-point tensor of ``state_dict`` holding a NaN or an
    infinity, or None."""
    for key, value in state_dict.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() \
                and not bool(torch.isfinite(value).all()):
            return key
    return None


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
    return safe_torch_load(filename, map_location)


def register_safe_local_loader() -> None:
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_safely,
                                     force=True)


def strip_prefix(state_dict: Dict[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    """Keep the keys under ``prefix`` with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def _under(key: str, layers: Sequence[str]) -> bool:
    return any(key.startswith(layer + '.') for layer in layers)


def check_state_dict_fits(module: torch.nn.Module, state_dict: Dict[str, torch.Tensor],
                          source: str, unbuilt_layers: Sequence[str] = ()) -> None:
    """Raise CheckpointError listing missing, unexpected and mis-shaped keys.

    ``unbuilt_layers``: module names of a whole network that ``module`` leaves out
    (a backbone's layers past its deepest output); the state dict must hold keys
    under each of them, which are not unexpected.
    """
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict)) + [
        f'{layer}.* (not built, past the outputs; a whole-network checkpoint has it)'
        for layer in unbuilt_layers if not any(_under(k, [layer]) for k in state_dict)]
    unexpected = sorted(k for k in set(state_dict) - set(own)
                        if not _under(k, unbuilt_layers))
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
                             prefix: Optional[str] = None,
                             unbuilt_layers: Sequence[str] = ()) -> None:
    """Load a backbone checkpoint strictly, checking its recorded architecture.

    Checkpoints written by ``tools/convert_weights.py`` record the constructor
    arguments they need in ``meta['backbone']``; these must equal the module's
    ``arch_args()``. Keys under ``prefix`` (e.g. 'backbone.') are taken when given.
    The checkpoint holds the whole network: the keys of ``unbuilt_layers`` (layers
    the module does not build) must be there, and are dropped by name.
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
    check_state_dict_fits(module, state_dict, filename, unbuilt_layers)
    state_dict = {k: v for k, v in state_dict.items() if not _under(k, unbuilt_layers)}
    module.load_state_dict(state_dict, strict=True)
