"""``--resume`` that never picks a damaged or diverged checkpoint.

mmengine resumes from the checkpoint its ``last_checkpoint`` file names; a process
killed while writing leaves that file truncated, and the resume fails. Here the
newest checkpoint of the work dir that loads and holds finite weights is taken, with
one warning for each newer file that does not, and one naming the temporary files of
interrupted writes (:mod:`sn2_det.engine.atomic_files`), which are never resumed from
and can be deleted.
"""
import glob
import logging
import os.path as osp
from typing import Optional

from mmengine.logging import print_log

from ..utils.checkpoint import CheckpointError, first_non_finite, safe_torch_load
from .atomic_files import leftover_partial_writes


def _candidates(work_dir: str) -> list:
    """``*.pth`` of ``work_dir``, newest first; ``best_*.pth`` files are skipped
    (mmengine saves them without optimizer and scheduler state)."""
    return sorted((p for p in glob.glob(osp.join(work_dir, '*.pth'))
                   if not osp.basename(p).startswith('best_')),
                  key=osp.getmtime, reverse=True)


def _problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be resumed from, or None."""
    try:
        checkpoint = safe_torch_load(path)
    except CheckpointError as err:
        return str(err)
    state = checkpoint.get('state_dict') if isinstance(checkpoint, dict) else None
    key = first_non_finite(state) if isinstance(state, dict) else None
    return f'its weights are not finite (first in {key})' if key else None


def latest_loadable_checkpoint(work_dir: str) -> Optional[str]:
    """The newest ``*.pth`` in ``work_dir`` that loads and holds finite weights, or
    None (see the module docstring)."""
    leftovers = leftover_partial_writes(work_dir) if osp.isdir(work_dir) else []
    if leftovers:
        print_log(f'interrupted writes left these temporary files in {work_dir} (safe '
                  f'to delete): {", ".join(leftovers)}', logger='current',
                  level=logging.WARNING)
    for path in _candidates(work_dir):
        problem = _problem(path)
        if problem is None:
            return path
        print_log(f'not resuming from {path}: {problem}', logger='current',
                  level=logging.WARNING)
    return None


def last_finite_checkpoint(work_dir: Optional[str]) -> str:
    """'The last finite checkpoint is X; ...' or 'No finite checkpoint ...': the
    sentence a message about diverged weights ends with."""
    found = next((p for p in _candidates(work_dir) if _problem(p) is None), None) \
        if work_dir and osp.isdir(work_dir) else None
    if found is None:
        return f'No finite checkpoint was saved in {work_dir or "the work dir"}.'
    return (f'The last finite checkpoint is {found}; resume from it (tools/train.py '
            f'CONFIG --resume {found}) with a lower learning rate or stronger gradient '
            f'clipping.')
