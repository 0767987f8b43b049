"""Test-only hooks for the fault and load tests, loaded by the configs those
tests write (``custom_imports``, with ``tests/plugins`` on ``PYTHONPATH``)."""
import json
import os
import os.path as osp
import signal

from mmengine.dist import get_rank
from mmengine.hooks import Hook

from mmdet.registry import HOOKS


def _append(path: str, record: dict) -> None:
    with open(path, 'a') as f:
        f.write(json.dumps(record) + '\n')
        f.flush()


@HOOKS.register_module()
class LossRecorderHook(Hook):
    """Appends each training iteration's losses (exact floats) to
    ``<log_dir>/losses.jsonl``, one JSON object a line."""

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        losses = {k: float(v) for k, v in outputs.items() if 'loss' in k}
        _append(osp.join(runner.log_dir, 'losses.jsonl'),
                dict(iter=runner.iter + 1, losses=losses))


@HOOKS.register_module()
class StopProcessHook(Hook):
    """Sends ``signal`` (a name: SIGKILL, SIGSTOP) to its own process on ``rank``
    before training iteration ``at_iter`` (0-based)."""

    def __init__(self, rank: int, at_iter: int, signal: str = 'SIGKILL'):
        self.rank, self.at_iter, self.signal = rank, at_iter, signal

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if get_rank() == self.rank and runner.iter == self.at_iter:
            os.kill(os.getpid(), getattr(signal, self.signal))


def _rss_mb(pid: int) -> float:
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return 0.0


def _tree_rss_mb() -> float:
    """Resident memory of this process and its children (data workers), in MB."""
    total, me = _rss_mb(os.getpid()), os.getpid()
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                ppid = int(f.read().rsplit(')', 1)[1].split()[1])
            if ppid == me:
                total += _rss_mb(int(entry))
        except (OSError, IndexError, ValueError):  # the process ended meanwhile
            continue
    return total


@HOOKS.register_module()
class MemoryRecorderHook(Hook):
    """Appends the resident memory of the process tree to ``<log_dir>/memory.jsonl``
    every ``interval`` training iterations and every ``interval`` validation images,
    and once more after the validation metric."""

    def __init__(self, interval: int = 10):
        self.interval = interval
        self.images = 0

    def _record(self, runner, phase: str, count: int):
        _append(osp.join(runner.log_dir, 'memory.jsonl'),
                dict(phase=phase, count=count, rss_mb=_tree_rss_mb()))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if (runner.iter + 1) % self.interval == 0:
            self._record(runner, 'train', runner.iter + 1)

    def before_val_epoch(self, runner):
        self.images = 0

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        before, self.images = self.images, self.images + len(data_batch['inputs'])
        if self.images // self.interval > before // self.interval:
            self._record(runner, 'val', self.images)

    def after_val_epoch(self, runner, metrics=None):
        self._record(runner, 'val_metric', self.images)
