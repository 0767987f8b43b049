"""Stop training when a loss becomes NaN or infinite (instead of training on).

Runs after each iteration and before the checkpoint hook (higher priority), so a
non-finite step is never saved; the error names the iteration, the loss terms that
are not finite and the last finite checkpoint of the work dir. Weights that go
non-finite in a step whose loss was still finite (the last step of an epoch, say) are
caught where a checkpoint would be written (:class:`sn2_det.engine.runner.CheckedRunner`).
"""
import math

import torch
from mmengine.hooks import Hook

from mmdet.registry import HOOKS

from ..utils.errors import SN2DetError
from .resume import last_finite_checkpoint


class TrainingDivergedError(SN2DetError, RuntimeError):
    """A training whose loss or weights became NaN or infinite."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None):
        bad = []
        for name, value in (outputs or {}).items():
            if 'loss' not in name:
                continue
            values = value if isinstance(value, (list, tuple)) else [value]
            total = sum(float(v.detach().sum()) if isinstance(v, torch.Tensor) else float(v)
                        for v in values)
            if not math.isfinite(total):
                bad.append(f'{name}={total}')
        if bad:
            raise TrainingDivergedError(
                f'non-finite loss at iteration {runner.iter + 1}: {", ".join(bad)}; '
                f'stopped before saving a checkpoint. '
                f'{last_finite_checkpoint(getattr(runner, "work_dir", None))}')
