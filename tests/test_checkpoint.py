"""mmengine checkpoints load under weights_only: resume, load_from, bad files."""
import pickle

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner

import sn2_det  # noqa: F401  (installs the safe loader)
from sn2_det.utils.checkpoint import CheckpointError, safe_torch_load


class TinyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels, mode='loss'):
        pred = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((pred.squeeze(1) - labels) ** 2).mean())
        return pred


class TinyData(torch.utils.data.Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, i):
        x = torch.tensor([i / 16, 1.0])
        return dict(inputs=x, labels=2 * x[0] - 1)


def _runner(work_dir, max_iters, **kwargs):
    return Runner(
        model=TinyModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=TinyData(), sampler=dict(type='DefaultSampler',
                                                                shuffle=True),
                              batch_size=4, num_workers=0,
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', milestones=[3], by_epoch=False),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2,
                                           by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0), **kwargs)


def test_training_checkpoint_resumes(tmp_path):
    first = _runner(tmp_path, max_iters=2)
    first.train()
    ckpt = tmp_path / 'iter_2.pth'
    assert ckpt.exists()
    # the plain torch.load of torch >= 2.6 refuses mmengine's objects
    with pytest.raises(pickle.UnpicklingError):
        torch.load(ckpt)
    saved = safe_torch_load(str(ckpt))
    assert 'message_hub' in saved and saved['meta']['iter'] == 2

    resumed = _runner(tmp_path, max_iters=4, resume=True)
    resumed.train()
    assert resumed.iter == 4
    assert resumed.optim_wrapper.optimizer.state_dict()['state']  # momentum restored
    final = safe_torch_load(str(tmp_path / 'iter_4.pth'))
    assert final['meta']['iter'] == 4
    scalars = final['message_hub']['log_scalars']
    assert len(scalars['train/loss'].data[0]) == 4  # history of both runs


def test_load_from(tmp_path):
    _runner(tmp_path / 'a', max_iters=2).train()
    runner = _runner(tmp_path / 'b', max_iters=2,
                     load_from=str(tmp_path / 'a' / 'iter_2.pth'))
    runner.load_or_resume()
    trained = safe_torch_load(str(tmp_path / 'a' / 'iter_2.pth'))['state_dict']
    assert torch.equal(runner.model.linear.weight, trained['linear.weight'])


def test_truncated_checkpoint_names_the_file(tmp_path):
    _runner(tmp_path, max_iters=2).train()
    path = tmp_path / 'iter_2.pth'
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match='iter_2.pth'):
        safe_torch_load(str(path))


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / 'notes.pth'
    path.write_text('these are not weights')
    with pytest.raises(CheckpointError, match='notes.pth'):
        safe_torch_load(str(path))


class _Exploit:
    def __reduce__(self):
        import os
        return os.system, (f'touch {_Exploit.marker}',)


def test_crafted_pickle_does_not_run(tmp_path):
    _Exploit.marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': _Exploit()}, path)
    with pytest.raises(CheckpointError, match='evil.pth'):
        safe_torch_load(str(path))
    from mmengine.runner.checkpoint import CheckpointLoader
    with pytest.raises(CheckpointError):
        CheckpointLoader.load_checkpoint(str(path))
    assert not _Exploit.marker.exists()


def test_missing_checkpoint():
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        safe_torch_load('/nonexistent/nowhere.pth')
