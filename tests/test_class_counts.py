"""Heads' num_classes against the datasets' classes before a run, and against the
classes a checkpoint records (sn2_det.apis.class_check, .detector_checkpoint)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

import sn2_det  # noqa: F401
from sn2_det.apis.class_check import check_class_counts, head_class_counts
from sn2_det.apis.detector_checkpoint import init_checked_detector
from sn2_det.apis.runner import load_config, test as run_test
from sn2_det.datasets.toy_shapes import CLASSES, generate_toy_shapes
from sn2_det.utils.checkpoint import CheckpointError
from sn2_det.utils.config import build_in_mmdet_scope, read_config
from sn2_det.utils.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TOY = str(ROOT / 'configs/toy/lighthead_sn2_toy.py')
FULL = str(ROOT / 'configs/lighthead_sn2.py')
SHIPPED = ['configs/lighthead_sn2.py', 'configs/lighthead_sn2_star.py',
           'configs/toy/lighthead_sn2_toy.py', 'configs/table7/lighthead_xception_40m.py',
           'configs/swap/faster-rcnn_sn2-1.0x_fpn_1x_coco.py',
           'configs/swap/retinanet_sn2-1.0x_fpn_1x_coco.py']
HEAD_80 = ("model.roi_head.bbox_head.num_classes = 80, but train_dataloader.dataset."
           "metainfo.classes has 3 classes ('circle', 'square', 'triangle'): set "
           "model.roi_head.bbox_head.num_classes=3")


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy')
    generate_toy_shapes(str(root), num_train=2, num_val=1, seed=7)
    return root


def _user_config(tmp_path, body: str) -> str:
    """A user's config beside their data, inheriting a shipped one."""
    path = tmp_path / 'my_config.py'
    path.write_text(f'_base_ = {TOY!r}\n{body}\n')
    return str(path)


def test_a_3_class_dataset_with_an_80_class_head_stops_before_training(tmp_path, toy_root):
    config = _user_config(tmp_path, 'model = dict(roi_head=dict(bbox_head=dict('
                                    'num_classes=80)))')
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    out = subprocess.run(
        [sys.executable, 'tools/train.py', config, '--data-root', str(toy_root),
         '--work-dir', str(tmp_path / 'w'), '--cfg-options',
         'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 2, out.stderr[-3000:]
    assert out.stderr.strip().splitlines()[-1].startswith(f'error: {HEAD_80}')
    assert 'Traceback' not in out.stderr
    assert 'Epoch(train)' not in out.stdout + out.stderr
    assert not (tmp_path / 'w').exists()  # stopped before the runner was built


def test_every_split_is_checked_and_named(toy_root):
    cfg = Config.fromfile(TOY)
    check_class_counts(cfg)
    cfg.val_dataloader.dataset.metainfo = dict(classes=('circle', 'square'))
    with pytest.raises(ConfigError, match=r"model.roi_head.bbox_head.num_classes = 3, but "
                                          r"val_dataloader.dataset.metainfo.classes has 2 "
                                          r"classes \('circle', 'square'\)"):
        check_class_counts(cfg)
    check_class_counts(cfg, ('train', 'test'))
    cfg = Config.fromfile(TOY)
    cfg.test_dataloader.dataset.pop('metainfo')
    with pytest.raises(ConfigError, match=r"test_dataloader.dataset \(no metainfo.classes: "
                                          r"CheckedCocoDataset.METAINFO\) has 80 classes "
                                          r"\('person', 'bicycle', "):
        check_class_counts(cfg)


def test_dataset_wrappers_are_looked_through():
    cfg = Config.fromfile(TOY)
    inner = cfg.train_dataloader.dataset.to_dict()
    inner['type'] = inner.pop('dataset_type')
    cfg.train_dataloader.dataset = dict(type='ConcatDataset', datasets=[
        dict(type='RepeatDataset', times=2, dataset=inner),
        dict(type='CocoDataset', data_root='x/', ann_file='a.json')])
    with pytest.raises(ConfigError, match=r'train_dataloader.dataset.datasets\[1\] \(no '
                                          r'metainfo.classes: CocoDataset.METAINFO\) '
                                          r'has 80'):
        check_class_counts(cfg)
    cfg.train_dataloader.dataset.datasets.pop(1)
    check_class_counts(cfg)


@pytest.mark.parametrize('config', SHIPPED)
def test_shipped_configs_agree_with_their_datasets(config):
    cfg = read_config(str(ROOT / config))
    assert head_class_counts(cfg.model)  # the check has a head to compare
    check_class_counts(cfg)


def test_mmdets_own_config_fine_tuned_on_3_classes_without_num_classes():
    cfg = read_config('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    check_class_counts(cfg)
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.metainfo = dict(classes=CLASSES)
    with pytest.raises(ConfigError, match=r'model.roi_head.bbox_head.num_classes = 80, but '
                                          r'train_dataloader.dataset.metainfo.classes '
                                          r'has 3'):
        check_class_counts(cfg)
    cfg.model.roi_head.bbox_head.num_classes = 3
    check_class_counts(cfg)


def _checkpoint(tmp_path, num_classes, classes, name='ckpt.pth'):
    cfg = Config.fromfile(TOY)
    cfg.model.roi_head.bbox_head.num_classes = num_classes
    path = tmp_path / name
    torch.save(dict(meta=dict(dataset_meta=dict(classes=classes)),
                    state_dict=build_in_mmdet_scope(cfg.model).state_dict()), path)
    return str(path)


def test_infer_refuses_a_checkpoint_whose_head_disagrees_with_its_classes(tmp_path):
    """Trained with the mistake above (an 80-class head on 3 classes): its labels
    have no names."""
    ckpt = _checkpoint(tmp_path, 80, CLASSES)
    config = _user_config(tmp_path, 'model = dict(roi_head=dict(bbox_head=dict('
                                    'num_classes=80)))')
    with pytest.raises(CheckpointError, match=r"records 3 classes \(meta dataset_meta."
                                              r"classes: 'circle', 'square', 'triangle'\), "
                                              r"but model.roi_head.bbox_head.num_classes = "
                                              r"80 in .*my_config.py"):
        init_checked_detector(config, ckpt)
    init_checked_detector(TOY, _checkpoint(tmp_path, 3, CLASSES, 'fits.pth'))


def test_test_refuses_a_checkpoint_trained_on_other_classes(tmp_path, toy_root):
    ckpt = _checkpoint(tmp_path, 3, ('cat', 'dog', 'bird'))
    cfg = load_config(TOY, str(tmp_path / 'w'), str(toy_root),
                      {'test_dataloader.num_workers': 0,
                       'test_dataloader.persistent_workers': False})
    with pytest.raises(CheckpointError, match=r"test_dataloader.dataset of .*lighthead_sn2"
                                              r"_toy.py has the classes \('circle', "
                                              r"'square', 'triangle'\), but checkpoint .*"
                                              r"ckpt.pth was trained on \('cat', 'dog', "
                                              r"'bird'\)"):
        run_test(cfg, ckpt)
