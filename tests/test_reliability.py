"""Killed or diverging runs: non-finite losses stop training, --resume skips a
damaged checkpoint."""
import os
import time

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import CheckpointHook
from mmengine.model import BaseModel
from mmengine.runner import Runner, get_priority

import sn2_det  # noqa: F401
from sn2_det.engine import NonFiniteLossHook
from sn2_det.engine.resume import latest_loadable_checkpoint


class _Runner:
    iter = 41


def test_hook_names_iteration_and_terms():
    hook = NonFiniteLossHook()
    hook.after_train_iter(_Runner(), 0, outputs=dict(loss_cls=torch.tensor(0.5),
                                                     acc=torch.tensor(float('nan'))))
    with pytest.raises(RuntimeError) as err:
        hook.after_train_iter(_Runner(), 0, outputs=dict(
            loss_cls=torch.tensor(float('nan')), loss_bbox=torch.tensor(1.0),
            loss_rpn_cls=[torch.tensor(1.0), torch.tensor(float('inf'))],
            acc=torch.tensor(float('nan'))))
    text = str(err.value)
    assert 'iteration 42' in text and 'loss_cls=nan' in text and 'loss_rpn_cls=inf' in text
    assert 'loss_bbox' not in text and 'acc' not in text


def test_hook_runs_before_the_checkpoint_hook():
    assert get_priority(NonFiniteLossHook.priority) < get_priority(CheckpointHook.priority)


class DivergingModel(BaseModel):
    """Its loss is finite for two iterations, then NaN."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)
        self.calls = 0

    def forward(self, inputs, mode='loss'):
        self.calls += 1
        loss = self.linear(inputs).pow(2).mean()
        return dict(loss=loss * float('nan') if self.calls >= 3 else loss)


def test_nan_loss_stops_run_and_keeps_last_good_checkpoint(tmp_path):
    data = [dict(inputs=torch.ones(1)) for _ in range(8)]
    runner = Runner(
        model=DivergingModel(), work_dir=str(tmp_path),
        train_dataloader=dict(dataset=data, sampler=dict(type='DefaultSampler',
                                                          shuffle=False),
                              batch_size=1, num_workers=0,
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=6),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1,
                                           by_epoch=False)),
        custom_hooks=[dict(type='NonFiniteLossHook')], default_scope='mmdet')
    with pytest.raises(RuntimeError, match='iteration 3: loss=nan'):
        runner.train()
    assert (tmp_path / 'iter_2.pth').exists() and not (tmp_path / 'iter_3.pth').exists()


def test_latest_loadable_checkpoint_skips_damaged_files(tmp_path):
    assert latest_loadable_checkpoint(str(tmp_path)) is None
    good = tmp_path / 'epoch_1.pth'
    torch.save(dict(state_dict={'w': torch.ones(3)}, meta=dict(epoch=1)), good)
    newer = tmp_path / 'epoch_2.pth'
    torch.save(dict(state_dict={'w': torch.ones(3000)}, meta=dict(epoch=2)), newer)
    data = newer.read_bytes()
    newer.write_bytes(data[:len(data) // 2])
    later = time.time() + 5
    os.utime(newer, (later, later))
    assert latest_loadable_checkpoint(str(tmp_path)) == str(good)


def test_resume_never_picks_a_best_checkpoint(tmp_path):
    epoch = tmp_path / 'epoch_3.pth'
    torch.save(dict(state_dict={}, optimizer={}, meta=dict(epoch=3)), epoch)
    best = tmp_path / 'best_accuracy_top1_epoch_3.pth'
    torch.save(dict(state_dict={}, meta=dict(epoch=3)), best)  # no optimizer state
    later = time.time() + 5
    os.utime(best, (later, later))
    assert latest_loadable_checkpoint(str(tmp_path)) == str(epoch)
