"""Checkpoints on every entry point: nothing stored in one is executed, non-finite
weights are never loaded for evaluation, inference or export and never saved, a work
dir serves one training at a time, and ``--resume`` with nothing to resume says so."""
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

import sn2_det  # noqa: F401  (registers the modules)
from sn2_det.apis.detector_checkpoint import init_checked_detector
from sn2_det.apis.runner import load_config, train
from sn2_det.datasets.toy_shapes import CLASSES, generate_toy_shapes
from sn2_det.engine import TrainingDivergedError
from sn2_det.engine.resume import latest_loadable_checkpoint
from sn2_det.engine.runner import LOCK_NAME, work_dir_lock
from sn2_det.utils.checkpoint import CheckpointError, safe_torch_load, stored_config
from sn2_det.utils.config import build_in_mmdet_scope

ROOT = Path(__file__).resolve().parents[1]
TOY = str(ROOT / 'configs/toy/lighthead_sn2_toy.py')
FULL = str(ROOT / 'configs/lighthead_sn2.py')
WORKERS = {f'{split}_dataloader.{key}': value for split in ('train', 'val', 'test')
           for key, value in (('num_workers', 0), ('persistent_workers', False))}
SMALL_OPTIONS = dict(WORKERS, **{'train_dataloader.batch_size': 2,
                                 'default_hooks.logger.interval': 1,
                                 'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 5})
SMALL = [f'{k}={v}' for k, v in SMALL_OPTIONS.items()]


def _run(args, timeout=600):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _last_line(out) -> str:
    return out.stderr.strip().splitlines()[-1]


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy')
    generate_toy_shapes(str(root), num_train=2, num_val=1, seed=5)
    return root


@pytest.fixture(scope='module')
def toy_checkpoint(toy_root, tmp_path_factory):
    """A checkpoint of the toy detector, written by a one-iteration training run."""
    work = tmp_path_factory.mktemp('toy_work')
    train(load_config(TOY, str(work), str(toy_root), SMALL_OPTIONS))
    return work / 'epoch_1.pth'


# --- nothing stored in a checkpoint runs ----------------------------------------------

@pytest.fixture(scope='module')
def evil(toy_checkpoint, tmp_path_factory):
    """The toy checkpoint whose stored training config first runs a shell command
    (and, in ``meta['config']``, the key old mmengine versions wrote, the same)."""
    folder = tmp_path_factory.mktemp('evil')
    marker = folder / 'PWNED'
    attack = f"_x=__import__('os').system('touch {marker}')\n"
    checkpoint = safe_torch_load(str(toy_checkpoint))
    checkpoint['meta']['cfg'] = attack + checkpoint['meta']['cfg']
    checkpoint['meta']['config'] = attack + 'gpu_ids = [0]\n'
    path = folder / 'evil.pth'
    torch.save(checkpoint, path)
    return path, marker


TRAINED_WITH = (r'It was trained with configs/toy/lighthead_sn2_toy\.py \(experiment '
                r'lighthead_sn2_toy_\d{8}_\d{6}; LightHeadRCNN, backbone ShuffleNetV2 '
                r'widen_factor=0\.5')


def test_the_stored_config_is_read_not_run(evil):
    path, marker = evil
    text = safe_torch_load(str(path))['meta']['cfg']
    read = stored_config(text)
    assert '_x' not in read and read['model']['type'] == 'LightHeadRCNN'
    assert read['model']['backbone']['widen_factor'] == 0.5
    assert not marker.exists()


def test_infer_runs_nothing_from_a_checkpoint(evil, toy_root, tmp_path):
    path, marker = evil
    out = _run(['tools/infer.py', FULL, str(path), str(toy_root / 'val/00000.png'),
                '--out', str(tmp_path / 'det.png')])
    assert out.returncode == 2, out.stderr[-3000:]
    assert re.search(r'evil\.pth does not fit the detector of configs/lighthead_sn2\.py.*'
                     + TRAINED_WITH, _last_line(out))
    assert not marker.exists()


def _test_tool(checkpoint, toy_root, tmp_path):
    """tools/test.py on the toy config with ``checkpoint``, as a user runs it."""
    return _run(['tools/test.py', TOY, str(checkpoint), '--data-root', str(toy_root),
                 '--work-dir', str(tmp_path / 'test'), '--cfg-options',
                 'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False'])


def test_test_runs_nothing_from_a_checkpoint(evil, toy_root, tmp_path):
    path, marker = evil
    out = _test_tool(path, toy_root, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'coco/bbox_mAP' in out.stdout + out.stderr
    assert not marker.exists()


def test_extract_backbone_runs_nothing_from_a_checkpoint(evil, tmp_path):
    path, marker = evil
    out = _run(['tools/extract_backbone.py', str(path), str(tmp_path / 'backbone.pth')])
    assert out.returncode == 0, out.stderr[-3000:]
    meta = safe_torch_load(str(tmp_path / 'backbone.pth'))['meta']
    assert meta['backbone_config']['type'] == 'ShuffleNetV2'
    assert meta['backbone_config']['widen_factor'] == 0.5
    assert not marker.exists()


def test_det_inferencer_runs_nothing_from_a_checkpoint(evil):
    from mmdet.apis import DetInferencer
    path, marker = evil
    with pytest.raises(CheckpointError, match=r'does not fit the detector of configs/'
                                              r'lighthead_sn2\.py'):
        DetInferencer(model=FULL, weights=str(path), device='cpu')
    inferencer = DetInferencer(model=TOY, weights=str(path), device='cpu')
    assert inferencer.model.dataset_meta['classes'] == CLASSES
    assert not marker.exists()


@pytest.mark.slow  # two trainings
def test_load_from_and_resume_run_nothing_from_a_checkpoint(evil, toy_root, tmp_path):
    path, marker = evil
    out = _run(['tools/train.py', TOY, '--data-root', str(toy_root), '--work-dir',
                str(tmp_path / 'wide'), '--cfg-options', *SMALL, f'load_from={path}',
                'model.backbone.widen_factor=1.0'])
    assert out.returncode == 2, out.stderr[-3000:]
    assert re.search(r'load_from checkpoint .*evil\.pth cannot fine-tune the detector of '
                     r'.*lighthead_sn2_toy\.py.*' + TRAINED_WITH, _last_line(out))
    # mmengine's Runner.resume runs meta['config']; sn2_det's Runner drops it
    out = _run(['tools/train.py', TOY, '--data-root', str(toy_root), '--work-dir',
                str(tmp_path / 'resumed'), '--resume', str(path), '--cfg-options', *SMALL,
                'train_cfg.max_epochs=2'])
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'resumed epoch: 1, iter: 1' in out.stdout + out.stderr
    assert (tmp_path / 'resumed/epoch_2.pth').exists()
    assert not marker.exists()


# --- non-finite weights ---------------------------------------------------------------

@pytest.fixture(scope='module')
def nan_checkpoint(tmp_path_factory):
    """Toy detector weights, two tensors of them NaN or infinite."""
    cfg = Config.fromfile(TOY)
    state = build_in_mmdet_scope(cfg.model).state_dict()
    keys = [k for k, v in state.items() if v.is_floating_point()]
    first, later = keys[3], keys[-1]
    state[first].view(-1)[0] = float('nan')
    state[later].view(-1)[-1] = float('inf')
    path = tmp_path_factory.mktemp('nan') / 'diverged.pth'
    torch.save(dict(meta=dict(dataset_meta=dict(classes=CLASSES)), state_dict=state), path)
    return path, first


def _non_finite(path, key) -> str:
    return (rf'{re.escape(str(path.name))} holds non-finite weights \(NaN or infinity\), '
            rf'first in {re.escape(key)}:')


def test_infer_refuses_non_finite_weights(nan_checkpoint, toy_root, tmp_path):
    path, key = nan_checkpoint
    picture = tmp_path / 'det.png'
    out = _run(['tools/infer.py', TOY, str(path), str(toy_root / 'val/00000.png'),
                '--out', str(picture)])
    assert out.returncode == 2, out.stderr[-3000:]
    assert re.search(r'^error: checkpoint .*' + _non_finite(path, key), _last_line(out))
    assert 'Traceback' not in out.stderr and not picture.exists()


def test_test_refuses_non_finite_weights(nan_checkpoint, toy_root, tmp_path):
    path, key = nan_checkpoint
    out = _test_tool(path, toy_root, tmp_path)
    assert out.returncode == 2, out.stderr[-3000:]
    assert re.search(r'^error: checkpoint .*' + _non_finite(path, key), _last_line(out))
    assert 'coco/bbox_mAP' not in out.stdout + out.stderr


def test_export_benchmark_and_mmdet_loaders_refuse_non_finite_weights(nan_checkpoint):
    from mmdet.apis import DetInferencer, init_detector
    from sn2_det.analysis.benchmark import build_detector
    from sn2_det.deploy import detector_from_config
    path, key = nan_checkpoint
    for load in (lambda: detector_from_config(TOY, str(path)),
                 lambda: build_detector(TOY, checkpoint=str(path)),
                 lambda: init_checked_detector(TOY, str(path))):
        with pytest.raises(CheckpointError, match=_non_finite(path, key)):
            load()
    # mmdet's own loaders do not pass the file name on: 'the checkpoint'
    for load in (lambda: DetInferencer(model=TOY, weights=str(path), device='cpu'),
                 lambda: init_detector(TOY, str(path), device='cpu')):
        with pytest.raises(CheckpointError, match=r'the checkpoint holds non-finite '
                                                  rf'weights .*first in {re.escape(key)}'):
            load()


def _diverging(toy_root, work, batch_size, max_epochs=2):
    """The toy training whose learning rate becomes infinite after epoch 1: epoch 1 is
    finite, the first step of epoch 2 makes the weights non-finite."""
    return load_config(TOY, str(work), str(toy_root), dict(
        SMALL_OPTIONS, **{'train_dataloader.batch_size': batch_size,
                          'train_cfg.max_epochs': max_epochs,
                          'param_scheduler': [dict(type='MultiStepLR', by_epoch=True,
                                                   milestones=[1], gamma=math.inf)]}))


@pytest.mark.slow  # two trainings
def test_weights_gone_non_finite_at_an_epoch_end_are_not_saved(toy_root, tmp_path):
    """One step an epoch: the step that diverges has a finite loss (it is computed
    before the update), and the epoch ends right after it."""
    work = tmp_path / 'work'
    with pytest.raises(TrainingDivergedError, match=r'non-finite \(NaN or infinity, first '
                                                    r'in .*\) by iteration 2: epoch_2\.pth '
                                                    r'is not saved\. The last finite '
                                                    r'checkpoint is .*epoch_1\.pth'):
        train(_diverging(toy_root, work, batch_size=2))
    assert not (work / 'epoch_2.pth').exists()
    assert (work / 'last_checkpoint').read_text().strip().endswith('epoch_1.pth')
    assert latest_loadable_checkpoint(str(work)) == str(work / 'epoch_1.pth')

    # --resume picks epoch 1: its first step starts from finite weights
    out = _run(['tools/train.py', TOY, '--data-root', str(toy_root), '--work-dir',
                str(work), '--resume', '--cfg-options', *SMALL, 'train_cfg.max_epochs=2'])
    log = out.stdout + out.stderr
    assert 'resumed epoch: 1, iter: 1' in log, log[-3000:]
    (loss,) = re.findall(r'Epoch\(train\) +\[2\]\[1/1\].* loss: (\S+)', log)
    assert math.isfinite(float(loss))
    assert out.returncode == 2 and 'epoch_2.pth is not saved' in _last_line(out)


def test_the_nan_loss_message_names_the_last_finite_checkpoint(toy_root, tmp_path):
    """Two steps an epoch: the first step of epoch 2 diverges, the second's loss is
    NaN."""
    work = tmp_path / 'work'
    with pytest.raises(TrainingDivergedError) as err:
        train(_diverging(toy_root, work, batch_size=1))
    assert re.search(r'non-finite loss at iteration 4: loss.*; stopped before saving a '
                     r'checkpoint\. The last finite checkpoint is .*epoch_1\.pth',
                     str(err.value)), str(err.value)
    assert sorted(p.name for p in work.glob('*.pth')) == ['epoch_1.pth']


# --- one training per work dir; --resume with nothing to resume -----------------------

@pytest.mark.slow
def test_a_second_training_in_a_running_trainings_work_dir_is_refused(toy_root, tmp_path):
    work = tmp_path / 'work'
    first = subprocess.Popen(
        [sys.executable, 'tools/train.py', TOY, '--data-root', str(toy_root),
         '--work-dir', str(work), '--cfg-options', *SMALL, 'train_cfg.max_epochs=1000'],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1'),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        lock = work / LOCK_NAME
        deadline = time.time() + 300
        while not (lock.exists() and lock.read_text().strip()):
            assert first.poll() is None and time.time() < deadline
            time.sleep(0.2)
        out = _run(['tools/train.py', TOY, '--data-root', str(toy_root), '--work-dir',
                    str(work), '--cfg-options', *SMALL])
        assert out.returncode == 2, out.stderr[-3000:]
        assert _last_line(out) == (
            f'error: work dir {work} is in use by a running training (process '
            f'{first.pid} on {os.uname().nodename}); its checkpoints and last_checkpoint '
            f"would be mixed with this run's: give this training another --work-dir, or "
            f'wait until that one ends')
        assert first.poll() is None  # the running one goes on
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    with work_dir_lock(str(work)):  # released by the killed process
        pass


def test_resume_with_nothing_to_resume_says_so(toy_root, tmp_path):
    work = tmp_path / 'empty'
    out = _run(['tools/train.py', TOY, '--data-root', str(toy_root), '--work-dir',
                str(work), '--resume', '--cfg-options', *SMALL])
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    lines = [line for line in log.splitlines() if 'no checkpoint to resume from' in line]
    assert len(lines) == 1 and f'in {work}; training starts from the beginning' in lines[0]
    assert (work / 'epoch_1.pth').exists()


@pytest.mark.slow  # a training through mmdet's tools/train.py
def test_mmdet_train_resume_with_nothing_to_resume_says_so(toy_root, tmp_path):
    import mmdet
    tool = Path(mmdet.__file__).parent / '.mim/tools/train.py'
    work = tmp_path / 'empty'
    options = SMALL + [
        f'{split}_dataloader.dataset.data_root={toy_root}/' for split in ('train', 'val')]
    out = _run([str(tool), TOY, '--work-dir', str(work), '--resume', '--cfg-options',
                *options, f'val_evaluator.ann_file={toy_root}/annotations/instances_val.json'])
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    lines = [line for line in log.splitlines() if 'no checkpoint to resume from' in line]
    assert len(lines) == 1, log[-3000:]
    assert (work / 'epoch_1.pth').exists()


# --- how it is wired ------------------------------------------------------------------

def test_every_shipped_config_names_the_checked_runner_and_mmengine_is_untouched():
    from mmengine.registry import RUNNERS
    from mmengine.runner import checkpoint as mmengine_checkpoint

    from mmdet.registry import RUNNERS as MMDET_RUNNERS
    from sn2_det.engine import CheckedRunner
    # set in the bases every config inherits from, and nowhere else
    setting = {str(p.relative_to(ROOT)) for p in (ROOT / 'configs').rglob('*.py')
               if 'runner_type' in p.read_text()}
    assert setting == {'configs/_base_/lighthead_rcnn_coco.py',
                       'configs/pretrain/_base_/imagenet_sgd.py',
                       'configs/_base_/swap_sn2.py'}
    for config in ('configs/toy/lighthead_sn2_toy.py', 'configs/table7/'
                   'lighthead_xception_40m.py', 'configs/pretrain/table7/'
                   'xception_40m_imagenet.py',
                   'configs/swap/rtmdet_tiny_sn2star-1.0x_8xb32-300e_coco.py'):
        assert Config.fromfile(str(ROOT / config)).runner_type == 'CheckedRunner'
    assert RUNNERS.get('CheckedRunner') is MMDET_RUNNERS.get('CheckedRunner') \
        is CheckedRunner
    # import sn2_det rebinds nothing of mmengine's
    assert mmengine_checkpoint.load_state_dict.__module__ == 'mmengine.runner.checkpoint'
    assert mmengine_checkpoint.load_checkpoint.__module__ == 'mmengine.runner.checkpoint'
