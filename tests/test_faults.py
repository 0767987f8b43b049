"""Faults: atomic checkpoint writes, randomness that is a function of the
seed and the position, a SIGKILLed run resumed to the uninterrupted run's losses and
weights, and a two-process run whose peer dies or hangs ending within a bound."""
import json
import os
import pickle
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.fileio import dump, get_file_backend
from mmengine.runner import Runner
from mmengine.runner.checkpoint import save_checkpoint

import sn2_det  # noqa: F401
from helpers import free_port
from sn2_det.datasets.seeded_sampling import SeededDataset, SeededIndex, SeededSampler
from sn2_det.datasets.toy_shapes import generate_toy_shapes
from sn2_det.engine import AtomicLocalBackend, IterationSeedHook, atomic_files
from sn2_det.engine.resume import latest_loadable_checkpoint
from sn2_det.utils.checkpoint import safe_torch_load
from mmdet.registry import DATASETS

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / 'tests' / 'plugins'
TOY = ROOT / 'configs' / 'toy' / 'lighthead_sn2_toy.py'

# The toy detector on 64x64 images, batch 2, the configs' checked loader and dataset,
# seeded sampling and augmentation, deterministic, no validation; iteration-based with
# a checkpoint every 5 iterations, or epoch-based (4 iterations an epoch on 8 images)
# with one every epoch.
TINY_CONFIG = '''\
_base_ = {base!r}
custom_imports = dict(imports=['sn2_det', 'sn2_test_hooks'], allow_failed_imports=False)
data_root = {data_root!r}
train_pipeline = [
    dict(type='LoadImageSafely', on_unreadable='skip', max_unreadable_share=0.01),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=2, num_workers={workers}, persistent_workers={persistent},
    sampler=dict(type='SeededSampler', sampler_type='DefaultSampler', shuffle=True),
    dataset=dict(type='SeededDataset', dataset_type='CheckedCocoDataset',
                 data_root=data_root,
                 ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='train/'), pipeline=train_pipeline,
                 indices={images}))
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = test_cfg = test_evaluator = None
train_cfg = dict(_delete_=True, **{train_cfg!r})
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(type='MultiStepLR', by_epoch=False, milestones=[20], gamma=0.5)]
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(by_epoch={by_epoch}, interval={interval},
                                     max_keep_ckpts=-1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0, deterministic=True)
custom_hooks = [dict(type='NonFiniteLossHook'), dict(type='IterationSeedHook'),
                dict(type='LossRecorderHook')]
'''
LOOPS = dict(iter=(dict(type='IterBasedTrainLoop', max_iters=30), None, False, 5),
             epoch=(dict(type='EpochBasedTrainLoop', max_epochs=8), 8, True, 1))


def tiny_config(path: Path, data_root: Path, loop: str = 'iter', workers: int = 1,
                extra: str = '') -> str:
    """Write the tiny config to ``path`` (``loop``: a key of LOOPS; ``extra``: more
    config lines); returns its path."""
    train_cfg, images, by_epoch, interval = LOOPS[loop]
    path.write_text(TINY_CONFIG.format(
        base=str(TOY), data_root=f'{data_root}/', workers=workers,
        persistent=workers > 0, images=images, train_cfg=train_cfg, by_epoch=by_epoch,
        interval=interval) + extra)
    return str(path)


def tool_env(**extra) -> dict:
    return dict(os.environ, PYTHONPATH=f'{ROOT}{os.pathsep}{PLUGINS}',
                OMP_NUM_THREADS='1', PYTHON=sys.executable, **extra)


def start(args, log: Path, **env) -> subprocess.Popen:
    """Start ``python ARGS`` (or the command ``args`` when it is not a Python script)
    in its own session, so that its data workers and ranks can be ended."""
    argv = [sys.executable, *args] if args[0].endswith('.py') else args
    return subprocess.Popen(argv, cwd=ROOT, env=tool_env(**env),
                            stdout=log.open('w'), stderr=subprocess.STDOUT,
                            start_new_session=True)


def end_session(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_tool(args, log: Path, timeout: float = 600, **env) -> int:
    proc = start(args, log, **env)
    try:
        return proc.wait(timeout=timeout)
    finally:
        end_session(proc)


def read_losses(work_dir: Path, run: int = 0) -> dict:
    """{iteration: losses} logged by the ``run``-th run (0: the first) in ``work_dir``;
    {} before it starts; complete lines only (the run may be writing)."""
    logs = sorted(work_dir.glob('*/losses.jsonl'))  # in log dirs named by start time
    if len(logs) <= run:
        return {}
    lines = logs[run].read_text().split('\n')[:-1]
    return {r['iter']: r['losses'] for r in map(json.loads, lines)}


@pytest.fixture(scope='module')
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny')
    generate_toy_shapes(str(root), num_train=24, num_val=4, image_size=(64, 64),
                        max_objects=2, seed=1)
    return root


# --- atomic writes -------------------------------------------------------------------

def test_mmengine_local_writes_go_through_the_atomic_backend(tmp_path):
    assert isinstance(get_file_backend(str(tmp_path / 'a.pth')), AtomicLocalBackend)
    dump(dict(a=1), str(tmp_path / 'sub' / 'x.json'))
    assert json.loads((tmp_path / 'sub' / 'x.json').read_text()) == dict(a=1)
    assert sorted(os.listdir(tmp_path / 'sub')) == ['x.json']


@pytest.mark.parametrize('fail_in', ['fsync', 'replace'])
def test_interrupted_checkpoint_write_keeps_the_previous_file(tmp_path, monkeypatch,
                                                              fail_in):
    path = tmp_path / 'iter_5.pth'
    save_checkpoint(dict(state_dict={'w': torch.ones(3)}, meta=dict(iter=5)), str(path))
    before = path.read_bytes()

    def interrupted(*args):
        raise KeyboardInterrupt  # a signal arriving in the middle of the write

    monkeypatch.setattr(atomic_files.os, fail_in, interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(dict(state_dict={'w': torch.zeros(10000)}, meta=dict(iter=10)),
                        str(path))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ['iter_5.pth']  # no half file, no temporary file
    assert safe_torch_load(str(path))['meta'] == dict(iter=5)


KILLED_WRITER = '''\
import os, sys, time, torch
import sn2_det
from sn2_det.engine import atomic_files
from mmengine.runner.checkpoint import save_checkpoint
atomic_files.os.fsync = lambda fd: (print('writing', flush=True), time.sleep(600))
save_checkpoint(dict(state_dict={'w': torch.zeros(1 << 20)}, meta=dict(iter=10)),
                sys.argv[1])
'''


def test_process_killed_while_writing_leaves_the_previous_checkpoint(tmp_path):
    """SIGKILL while the bytes are being written (a stalled disk) leaves the previous
    checkpoint as the one resume picks, and a temporary file resume reports."""
    path = tmp_path / 'iter_10.pth'
    torch.save(dict(state_dict={'w': torch.ones(3)}, meta=dict(iter=10)), path)
    before = path.read_bytes()
    writer = subprocess.Popen([sys.executable, '-c', KILLED_WRITER, str(path)], cwd=ROOT,
                              env=tool_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert 'writing\n' in iter(writer.stdout.readline, '')  # stops at the marker
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    (leftover,) = atomic_files.leftover_partial_writes(str(tmp_path))
    assert Path(leftover).name.startswith('.iter_10.pth.')
    assert latest_loadable_checkpoint(str(tmp_path)) == str(path)


# --- randomness as a function of seed and position -----------------------------------

@DATASETS.register_module(force=True)
class RandomDrawDataset:
    """Each sample: its index and one draw of each global generator."""

    def __init__(self, size: int = 6):
        self.size = size

    def __len__(self):
        return self.size

    def __getitem__(self, idx):
        return [int(idx), random.random(), float(np.random.rand()), float(torch.rand(1))]


def _loader(wrapped: bool, workers: int):
    dataset = dict(type='RandomDrawDataset')
    sampler = dict(type='DefaultSampler', shuffle=True)
    if wrapped:
        dataset = dict(type='SeededDataset', dataset_type='RandomDrawDataset')
        sampler = dict(sampler, type='SeededSampler', sampler_type='DefaultSampler')
    return Runner.build_dataloader(
        dict(dataset=dataset, sampler=sampler, batch_size=2, num_workers=workers,
             persistent_workers=workers > 0, collate_fn=dict(type='default_collate')),
        seed=0)


def _epoch(loader, epoch: int) -> list:
    loader.batch_sampler.sampler.set_epoch(epoch)
    return [row for batch in loader for row in torch.stack(batch, 1).tolist()]


@pytest.mark.parametrize('workers', [0, 1])
def test_augmentation_draws_depend_on_seed_and_position_only(workers):
    """Epoch 2 of a loader that ran epochs 0 and 1 equals epoch 2 of a fresh loader
    (a resumed run); the draws differ between epochs and samples."""
    def epochs_of(wrapped, fresh_at):
        loader = _loader(wrapped, workers)
        return [_epoch(loader, e) for e in range(fresh_at, 3)][-1]

    assert epochs_of(True, 0) == epochs_of(True, 2)
    assert epochs_of(False, 0) != epochs_of(False, 2)  # without the wrappers: history
    seeded = _loader(True, workers)
    first, second = _epoch(seeded, 0), _epoch(seeded, 1)
    draws = [row[1:] for row in first + second]
    assert len({tuple(d) for d in draws}) == len(draws)
    assert sorted(r[0] for r in first) == sorted(r[0] for r in second) == list(range(6))


def test_seeded_dataset_leaves_the_callers_generators_alone():
    dataset = SeededDataset(dataset_type='RandomDrawDataset')
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    first = dataset[SeededIndex(4, seed=7)]
    assert torch.equal(torch.rand(3), expected)
    assert dataset[SeededIndex(4, seed=7)] == first
    assert dataset[SeededIndex(4, seed=8)] != first
    assert dataset[3][0] == 3 and len(dataset) == 6 and dataset.size == 6


def test_seeded_index_survives_pickling_and_acts_as_an_int():
    index = pickle.loads(pickle.dumps(SeededIndex(5, seed=123)))
    assert index == 5 and index.seed == 123 and [0, 1, 2, 3, 4, 5][index] == 5
    sampler = SeededSampler(list(range(8)), seed=3, shuffle=False)
    sampler.set_epoch(1)
    seeds = [i.seed for i in sampler]
    assert [int(i) for i in sampler] == list(range(8)) and len(set(seeds)) == 8
    again = SeededSampler(list(range(8)), seed=3, shuffle=False)
    assert [i.seed for i in again] != seeds  # epoch 0
    again.set_epoch(1)
    assert [i.seed for i in again] == seeds


class _Runner:
    seed = 0

    def __init__(self, iteration):
        self.iter = iteration


def test_iteration_seed_hook_seeds_from_seed_and_iteration():
    hook = IterationSeedHook()
    draws = []
    for iteration in (3, 4, 3):
        hook.before_train_iter(_Runner(iteration), 0)
        draws.append((random.random(), float(np.random.rand()), float(torch.rand(1))))
    assert draws[0] == draws[2] != draws[1]


# --- SIGKILL and --resume ------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize('loop', ['epoch', 'iter'])
def test_sigkilled_run_resumes_to_the_uninterrupted_losses_and_weights(
        tmp_path, tiny_root, loop):
    """A run killed at a random iteration and resumed gives the uninterrupted run's
    losses from the checkpoint on, and its final weights. Epoch-based: persistent
    data workers whose generators would otherwise differ after the restart."""
    config = tiny_config(tmp_path / 'tiny.py', tiny_root, loop)
    reference, killed = tmp_path / 'reference', tmp_path / 'killed'
    reference_log = tmp_path / 'reference.log'
    assert run_tool(['tools/train.py', config, '--work-dir', str(reference)],
                    reference_log) == 0, reference_log.read_text()[-3000:]
    expected = read_losses(reference)
    last = max(expected)
    assert sorted(expected) == list(range(1, last + 1))
    spacing = 4 if loop == 'epoch' else 5  # iterations between checkpoints

    kill_at = random.Random(loop).randint(6, last - 6)
    print(f'killing the run after iteration {kill_at}')
    proc = start(['tools/train.py', config, '--work-dir', str(killed)],
                 tmp_path / 'killed.log')
    try:
        while max(read_losses(killed), default=0) < kill_at:
            assert proc.poll() is None, (tmp_path / 'killed.log').read_text()[-3000:]
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        end_session(proc)
    before_kill = read_losses(killed)
    assert all(before_kill[i] == expected[i] for i in before_kill)
    print(f'killed after iteration {max(before_kill)}; interrupted checkpoint writes: '
          f'{atomic_files.leftover_partial_writes(str(killed))}')

    log = tmp_path / 'resumed.log'
    assert run_tool(['tools/train.py', config, '--work-dir', str(killed), '--resume'],
                    log) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert 'not resuming from' not in text  # no damaged checkpoint, even mid-write
    resumed = read_losses(killed, run=1)
    start_iter = min(resumed) - 1
    print(f'resumed from iteration {start_iter}')
    assert start_iter % spacing == 0
    assert max(before_kill) - spacing <= start_iter <= max(before_kill)
    epoch = start_iter // 4 if loop == 'epoch' else 0
    assert f'resumed epoch: {epoch}, iter: {start_iter}' in text
    assert sorted(resumed) == list(range(start_iter + 1, last + 1))
    for iteration, losses in resumed.items():
        assert losses == expected[iteration], iteration
    final = 'epoch_8.pth' if loop == 'epoch' else f'iter_{last}.pth'
    want = safe_torch_load(str(reference / final))['state_dict']
    got = safe_torch_load(str(killed / final))['state_dict']
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)


# --- a distributed peer that dies or hangs -------------------------------------------

def _stop_config(tmp_path, tiny_root, signal_name: str, timeout_s: int) -> str:
    return tiny_config(tmp_path / 'dist.py', tiny_root, workers=0,
                       extra=textwrap.dedent(f'''
        custom_hooks = [dict(type='StopProcessHook', rank=1, at_iter=3,
                             signal={signal_name!r})]
        env_cfg = dict(dist_cfg=dict(backend='gloo', timeout={timeout_s}))
        '''))


@pytest.mark.slow
def test_torchrun_ends_the_run_when_one_process_is_killed(tmp_path, tiny_root):
    config = _stop_config(tmp_path, tiny_root, 'SIGKILL', timeout_s=1800)
    log = tmp_path / 'dist.log'
    began = time.monotonic()
    proc = start(['bash', 'tools/dist_train.sh', config, '2', '--work-dir',
                  str(tmp_path / 'work')], log, PORT=free_port())
    try:
        code = proc.wait(timeout=120)
    finally:
        end_session(proc)
    elapsed = time.monotonic() - began
    print(f'launcher exited with {code} after {elapsed:.1f} s')
    text = log.read_text()
    assert code != 0, text[-3000:]
    assert 'Iter(train) [ 3/30]' in text or 'Iter(train) [3/30]' in text, text[-3000:]
    assert 'Signal 9' in text or 'SIGKILL' in text, text[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize('signal_name,timeout_s', [('SIGSTOP', 20), ('SIGKILL', 1800)])
def test_without_torchrun_a_stopped_or_dead_peer_ends_the_other_process(
        tmp_path, tiny_root, signal_name, timeout_s):
    """Ranks started by hand (no torchrun agent): when rank 1 stops (SIGSTOP, alive but
    silent) rank 0 fails its next collective after ``env_cfg.dist_cfg.timeout``
    seconds; when rank 1 dies, rank 0 fails at once on the closed connection."""
    config = _stop_config(tmp_path, tiny_root, signal_name, timeout_s)
    port = free_port()
    procs = [start(['tools/train.py', config, '--launcher', 'pytorch', '--work-dir',
                    str(tmp_path / 'work')], tmp_path / f'rank{rank}.log',
                   RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2',
                   MASTER_ADDR='127.0.0.1', MASTER_PORT=port)
             for rank in (0, 1)]
    began = time.monotonic()
    try:
        code = procs[0].wait(timeout=150)
        elapsed = time.monotonic() - began
        assert (procs[1].poll() is None) == (signal_name == 'SIGSTOP')
    finally:
        for proc in procs:
            end_session(proc)
    text = (tmp_path / 'rank0.log').read_text()
    print(f'rank 0 exited with {code} after {elapsed:.1f} s')
    assert code != 0, text[-3000:]
    assert 'Iter(train) [ 3/30]' in text or 'Iter(train) [3/30]' in text, text[-3000:]
    if signal_name == 'SIGSTOP':
        assert f'Timed out waiting {timeout_s * 1000}ms' in text, text[-3000:]
    else:
        assert re.search('Connection (closed|reset) by peer', text), text[-3000:]
