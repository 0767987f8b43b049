"""Stop training when a loss becomes NaN or infinite (instead of training on).

Runs after each iteration and before the checkpoint hook (higher priority), so a
non-finite step is never saved over the last good checkpoint; the error names the
iteration and the loss terms that are not finite.
"""
import math

import torch
from mmengine.hooks import Hook

from mmdet.registry import HOOKS


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
            raise RuntimeError(f'non-finite loss at iteration {runner.iter + 1}: '
                               f'{", ".join(bad)}; stopped before saving a checkpoint '
                               f'(the last good one is kept)')
