"""``--resume`` that never picks a damaged checkpoint.

mmengine resumes from the checkpoint its ``last_checkpoint`` file names; a process
killed while writing leaves that file truncated, and the resume fails. Here the
newest checkpoint of the work dir that loads is taken, with one warning for each
newer file that does not, and one naming the temporary files of interrupted writes
(:mod:`sn2_det.engine.atomic_files`), which are never resumed from and can be deleted.
"""
import glob
import logging
import os.path as osp
from typing import Optional

from mmengine.logging import print_log

from ..utils.checkpoint import CheckpointError, safe_torch_load
from .atomic_files import leftover_partial_writes


def latest_loadable_checkpoint(work_dir: str) -> Optional[str]:
    """The newest ``*.pth`` in ``work_dir`` that loads, or None; ``best_*.pth`` files
    are skipped (mmengine saves them without optimizer and scheduler state)."""
    leftovers = leftover_partial_writes(work_dir) if osp.isdir(work_dir) else []
    if leftovers:
        print_log(f'interrupted writes left these temporary files in {work_dir} (safe '
                  f'to delete): {", ".join(leftovers)}', logger='current',
                  level=logging.WARNING)
    candidates = sorted((p for p in glob.glob(osp.join(work_dir, '*.pth'))
                         if not osp.basename(p).startswith('best_')),
                        key=osp.getmtime, reverse=True)
    for path in candidates:
        try:
            safe_torch_load(path)
        except CheckpointError as err:
            print_log(f'not resuming from {path}: {err}', logger='current',
                      level=logging.WARNING)
            continue
        return path
    return None
