"""Toy dataset, tools/train.py (resume, work dir), tools/test.py, tools/infer.py and a
two-process distributed run, on a few generated images."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

from helpers import NO_WORKERS, free_port, run_python as _run
from sn2_det.apis.runner import set_data_root
from sn2_det.datasets.toy_shapes import CLASSES, dataset_digest, generate_toy_shapes
from sn2_det.utils.checkpoint import safe_torch_load

ROOT = Path(__file__).resolve().parents[1]
TOY = str(ROOT / 'configs/toy/lighthead_sn2_toy.py')
SMALL = ['train_dataloader.batch_size=2', *(f'{k}={v}' for k, v in NO_WORKERS.items()),
         'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=1',
         'default_hooks.checkpoint.max_keep_ckpts=5']


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy')
    generate_toy_shapes(str(root), num_train=4, num_val=2, seed=3)
    return root


def test_toy_dataset_is_deterministic_coco(tmp_path, toy_root):
    generate_toy_shapes(str(tmp_path / 'again'), num_train=4, num_val=2, seed=3)
    assert dataset_digest(str(tmp_path / 'again')) == dataset_digest(str(toy_root))
    from pycocotools.coco import COCO
    coco = COCO(str(toy_root / 'annotations/instances_train.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
    assert len(coco.getImgIds()) == 4 and len(coco.getAnnIds()) >= 4
    for ann in coco.loadAnns(coco.getAnnIds()):
        x, y, w, h = ann['bbox']
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 256 and y + h <= 256


def test_set_data_root_moves_every_path(toy_root):
    cfg = Config.fromfile(str(ROOT / 'configs/lighthead_sn2.py'))
    set_data_root(cfg, str(toy_root))
    root = str(toy_root) + '/'
    assert cfg.train_dataloader.dataset.data_root == root
    assert cfg.test_dataloader.dataset.data_root == root
    assert cfg.val_evaluator.ann_file == root + 'annotations/instances_val2017.json'
    with pytest.raises(FileNotFoundError, match='not a directory'):
        set_data_root(cfg, '/nonexistent/coco')


@pytest.mark.slow
def test_train_resume_test_and_infer(tmp_path, toy_root):
    work = tmp_path / 'work'
    common = ['--data-root', str(toy_root), '--work-dir', str(work), '--cfg-options',
              *SMALL]
    first = _run(['tools/train.py', TOY, *common, 'train_cfg.max_epochs=1'])
    assert first.returncode == 0, first.stderr[-3000:]
    assert (work / 'epoch_1.pth').exists()
    resumed = _run(['tools/train.py', TOY, *common, 'train_cfg.max_epochs=2',
                    'train_cfg.val_interval=2', '--resume'])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert 'resumed epoch: 1' in log.lower() or 'resumed' in log.lower()
    assert 'Epoch(train) [2]' in log and 'Epoch(train) [1]' not in log
    assert 'bbox_mAP' in log  # validation ran through CocoMetric
    ckpt = safe_torch_load(str(work / 'epoch_2.pth'))
    assert ckpt['meta']['epoch'] == 2

    test = _run(['tools/test.py', TOY, str(work / 'epoch_2.pth'), *common[:4],
                 '--out', str(tmp_path / 'preds.pkl'), '--cfg-options', *SMALL])
    assert test.returncode == 0, test.stderr[-3000:]
    assert 'coco/bbox_mAP' in test.stdout + test.stderr
    assert (tmp_path / 'preds.pkl').exists()

    picture = tmp_path / 'det.png'
    infer = _run(['tools/infer.py', TOY, str(work / 'epoch_2.pth'),
                  str(toy_root / 'val/00000.png'), '--out', str(picture),
                  '--score-thr', '0.0'])
    assert infer.returncode == 0, infer.stderr[-3000:]
    import cv2
    assert cv2.imread(str(picture)).shape == (256, 256, 3)
    missing = _run(['tools/infer.py', TOY, str(work / 'epoch_2.pth'), 'no/such.png'])
    assert missing.returncode != 0 and 'no/such.png' in missing.stderr


def test_two_process_distributed_training(tmp_path, toy_root):
    work = tmp_path / 'dist'
    env = dict(os.environ, PYTHON=sys.executable, PORT=free_port(), OMP_NUM_THREADS='1')
    out = subprocess.run(
        ['bash', 'tools/dist_train.sh', TOY, '2', '--data-root', str(toy_root),
         '--work-dir', str(work), '--cfg-options', *SMALL, 'train_cfg.max_epochs=1',
         'train_cfg.val_interval=5'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    assert 'Distributed launcher: pytorch' in log and 'Distributed training: True' in log
    assert 'CPUDistributedDataParallel' in log or 'World size: 2' in log
    assert (work / 'epoch_1.pth').exists()


@pytest.mark.slow
def test_resume_skips_a_truncated_newest_checkpoint(tmp_path, toy_root):
    work = tmp_path / 'work'
    common = ['--data-root', str(toy_root), '--work-dir', str(work), '--cfg-options',
              *SMALL]
    first = _run(['tools/train.py', TOY, *common, 'train_cfg.max_epochs=2',
                  'train_cfg.val_interval=5'])
    assert first.returncode == 0, first.stderr[-3000:]
    newest = work / 'epoch_2.pth'
    data = newest.read_bytes()
    newest.write_bytes(data[:len(data) // 3])
    resumed = _run(['tools/train.py', TOY, *common, 'train_cfg.max_epochs=3',
                    'train_cfg.val_interval=5', '--resume'])
    log = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, log[-3000:]
    assert f'not resuming from {newest}' in log
    assert 'Epoch(train) [2]' in log and 'Epoch(train) [1]' not in log


def test_data_paths_checked_before_the_run(tmp_path, toy_root):
    from sn2_det.apis.data_check import check_data_paths
    cfg = Config.fromfile(TOY)
    set_data_root(cfg, str(toy_root))
    check_data_paths(cfg)
    bad = tmp_path / 'list.json'
    bad.write_text('[1, 2, 3]')
    cfg.train_dataloader.dataset.ann_file = str(bad)
    with pytest.raises(ValueError, match=r'train_dataloader.dataset.ann_file: .*list.json is '
                                         r'not COCO JSON: missing images, annotations'):
        check_data_paths(cfg)
    notjson = tmp_path / 'notes.json'
    notjson.write_text('not json at all')
    cfg.train_dataloader.dataset.ann_file = str(notjson)
    with pytest.raises(ValueError, match='notes.json is not JSON'):
        check_data_paths(cfg)
    cfg.val_dataloader.dataset.data_root = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError, match='val_dataloader.dataset.data_root'):
        check_data_paths(cfg, ('val',))


def test_train_tool_names_a_missing_annotation_file(tmp_path, toy_root):
    out = _run(['tools/train.py', TOY, '--data-root', str(toy_root), '--work-dir',
                str(tmp_path / 'w'), '--cfg-options', *SMALL,
                'train_dataloader.dataset.ann_file=annotations/missing.json'])
    assert out.returncode != 0
    assert 'train_dataloader.dataset.ann_file' in out.stderr
    assert 'missing.json does not exist' in out.stderr
    assert 'Epoch(train)' not in out.stdout + out.stderr
