"""EMA of the weights (configs/_base_/ema.py): off by default, averaged as
ExpMomentumEMA defines it (checked against a plain loop), saved in the checkpoint,
continued by --resume, and used for validation and testing."""
import math
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from helpers import NO_WORKERS
from sn2_det.apis import runner as sn2_runner
from sn2_det.apis.runner import load_config, set_data_root, train
from sn2_det.datasets.toy_shapes import generate_toy_shapes
from sn2_det.engine.resume import latest_loadable_checkpoint
from sn2_det.utils.checkpoint import safe_torch_load

ROOT = Path(__file__).resolve().parents[1]
TOY = str(ROOT / 'configs/toy/lighthead_sn2_toy.py')
TOY_EMA = str(ROOT / 'configs/toy/lighthead_sn2_toy_ema.py')
SMALL = {**NO_WORKERS, 'train_dataloader.batch_size': 2,
         'default_hooks.logger.interval': 1, 'default_hooks.checkpoint.max_keep_ckpts': 5}


@HOOKS.register_module()
class _WeightRecorder(Hook):
    """Observes the model: its weights after each training step (after EMAHook's
    update) and the weights the first validation / test batch runs with."""
    priority = 'LOWEST'
    records = {}

    def _model(self, runner):
        model = runner.model
        return getattr(model, 'module', model)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.records.setdefault('train', []).append(
            {k: v.detach().clone() for k, v in self._model(runner).state_dict().items()})

    def before_val_iter(self, runner, batch_idx, data_batch=None):
        if batch_idx == 0:
            self.records.setdefault('val', []).append(
                {k: v.detach().clone() for k, v in self._model(runner).state_dict().items()})

    def before_test_iter(self, runner, batch_idx, data_batch=None):
        if batch_idx == 0:
            self.records.setdefault('test', []).append(
                {k: v.detach().clone() for k, v in self._model(runner).state_dict().items()})


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy')
    generate_toy_shapes(str(root), num_train=4, num_val=2, seed=3)
    return root


def _cfg(path, toy_root, work, epochs, record=True):
    cfg = load_config(path, work_dir=str(work),
                      cfg_options=dict(SMALL, **{'train_cfg.max_epochs': epochs}))
    set_data_root(cfg, str(toy_root))
    if record:
        cfg.custom_hooks = list(cfg.custom_hooks) + [dict(type='_WeightRecorder')]
    return cfg


def _hook_types(cfg):
    return [h['type'] for h in cfg.get('custom_hooks', [])]


@pytest.mark.slow
def test_ema_is_off_by_default_and_one_line_turns_it_on(tmp_path):
    configs = [ROOT / 'configs/lighthead_sn2.py', ROOT / 'configs/lighthead_sn2_star.py',
               ROOT / 'configs/toy/lighthead_sn2_toy.py',
               *sorted((ROOT / 'configs/table7').glob('lighthead_*.py'))]
    for path in configs:
        assert 'EMAHook' not in _hook_types(Config.fromfile(str(path))), path
    ema = Config.fromfile(TOY_EMA)
    assert ema.custom_hooks[:-1] == Config.fromfile(TOY).custom_hooks
    assert ema.custom_hooks[-1] == dict(type='EMAHook', ema_type='ExpMomentumEMA',
                                        momentum=0.0002, update_buffers=True, priority=49)
    # the documented lines, in a user's config outside the repository
    user = tmp_path / 'my_lighthead_ema.py'
    user.write_text(f"_base_ = ['{ROOT}/configs/lighthead_sn2.py', "
                    f"'{ROOT}/configs/_base_/ema.py']\n"
                    "custom_hooks = _base_.custom_hooks + [_base_.ema_hook]\n")
    cfg = Config.fromfile(str(user))
    assert _hook_types(cfg) == _hook_types(Config.fromfile(
        str(ROOT / 'configs/lighthead_sn2.py'))) + ['EMAHook']


def _plain_ema(raw_steps, momentum=0.0002, gamma=2000):
    """ExpMomentumEMA by its definition (mmdet.models.layers.ema), in float64: the
    first step copies, step n >= 1 moves by (1 - m) exp(-(1 + n) / gamma) + m; integer
    buffers keep their first value."""
    average = {k: v.double() if v.is_floating_point() else v.clone()
               for k, v in raw_steps[0].items()}
    for n, raw in enumerate(raw_steps[1:], start=1):
        weight = (1 - momentum) * math.exp(-(1 + n) / gamma) + momentum
        for k, v in raw.items():
            if v.is_floating_point():
                average[k] = average[k] + weight * (v.double() - average[k])
    return average


def _assert_state_close(a, b, atol=1e-6):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].double(), b[k].double(), atol=atol, rtol=1e-5), k


def _differs(a, b) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max())
               for k in a if a[k].is_floating_point())


def test_ema_saved_resumed_and_evaluated(tmp_path, toy_root):
    """A run stopped after epoch 1 and resumed for epoch 2 (2 steps an epoch)."""
    _WeightRecorder.records = {}
    train(_cfg(TOY_EMA, toy_root, tmp_path / 'work', 1))
    first = safe_torch_load(str(tmp_path / 'work/epoch_1.pth'))
    assert int(first['ema_state_dict']['steps']) == 2
    resume_from = latest_loadable_checkpoint(str(tmp_path / 'work'))
    assert resume_from.endswith('epoch_1.pth')
    train(_cfg(TOY_EMA, toy_root, tmp_path / 'work', 2), resume='auto')
    steps = _WeightRecorder.records['train']  # raw weights after each of the 4 steps
    ckpt = safe_torch_load(str(tmp_path / 'work/epoch_2.pth'))
    averaged = ckpt['state_dict']
    raw = {k[len('module.'):]: v for k, v in ckpt['ema_state_dict'].items()
           if k.startswith('module.')}
    # the resumed run continued the average: step count and values as if never stopped
    assert len(steps) == 4 and int(ckpt['ema_state_dict']['steps']) == 4
    _assert_state_close(averaged, _plain_ema(steps))
    # the checkpoint holds the raw weights of the last step beside their average
    _assert_state_close(raw, steps[-1], atol=0)
    # the average is not the raw weights (early in the warm-up they are close: the
    # average's step weight starts near 1 and the learning rate near 0)
    assert _differs(averaged, raw) > 1e-5
    # validation (at the end of each run; the last after step 4) ran on the averaged
    # weights, and training went on with the raw ones
    assert len(_WeightRecorder.records['val']) == 2
    _assert_state_close(_WeightRecorder.records['val'][-1], averaged, atol=0)
    assert _differs(_WeightRecorder.records['val'][-1], raw) > 1e-5

    # testing the checkpoint evaluates the averaged weights
    _WeightRecorder.records = {}
    sn2_runner.test(_cfg(TOY_EMA, toy_root, tmp_path / 'test', 2),
                    str(tmp_path / 'work/epoch_2.pth'))
    _assert_state_close(_WeightRecorder.records['test'][0], averaged, atol=0)
