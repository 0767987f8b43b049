"""``--resume`` that never picks a damaged checkpoint.

mmengine resumes from the checkpoint its ``last_checkpoint`` file names; a process
killed while writing leaves that file truncated, and the resume fails. Here the
newest checkpoint of the work dir that loads is taken, with one warning for each
newer file that does not.
"""
import glob
import logging
import os.path as osp
from typing import Optional

from mmengine.logging import print_log

from ..utils.checkpoint import CheckpointError, safe_torch_load


def latest_loadable_checkpoint(work_dir: str) -> Optional[str]:
    """The newest ``*.pth`` in ``work_dir`` that loads, or None; ``best_*.pth`` files
    are skipped (mmengine saves them without optimizer and scheduler state)."""
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
