"""``make demo``'s run (tools/demo.py) on a few images: the mmAP it prints, the grid of
ground truth beside predictions, and the loss and mmAP curves read from the run's
scalars.json."""
import json
from pathlib import Path

import cv2
import pytest

from helpers import NO_WORKERS
from sn2_det.apis.demo import matched, read_scalars, run_demo

ROOT = Path(__file__).resolve().parents[1]
SMALL = {**NO_WORKERS, 'train_dataloader.batch_size': 2,
         'default_hooks.logger.interval': 1, 'train_cfg.max_epochs': 2}


def test_matched_needs_class_and_overlap():
    gt, gt_labels = [[0, 0, 10, 10], [20, 20, 40, 40]], [0, 1]
    preds = [[0, 0, 10, 9], [0, 0, 10, 10], [21, 21, 40, 40], [50, 50, 60, 60]]
    assert matched(preds, [0, 1, 1, 1], gt, gt_labels).tolist() == [True, False, True, False]
    assert matched([], [], gt, gt_labels).tolist() == []
    assert matched(preds[:1], [0], [], []).tolist() == [False]


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo')
    result = run_demo(str(ROOT / 'configs/toy/lighthead_sn2_toy.py'), str(root / 'work'),
                      cfg_options=SMALL, data_root=str(root / 'toy'),
                      dataset_args=dict(num_train=4, num_val=4, seed=3), val_interval=1,
                      num_images=4, score_thr=0.05)
    return root, result


def test_demo_pictures(demo):
    root, result = demo
    grid = cv2.imread(result['predictions'])
    # 2 rows of 3 image pairs, 420 pixels a panel: enlarged from the 256-pixel images
    assert grid is not None and grid.shape[1] >= 6 * 400 and grid.shape[0] >= 2 * 400
    curves = cv2.imread(result['curves'])
    assert curves is not None and curves.shape[1] >= 1000
    annotations = json.loads((root / 'toy/annotations/instances_val.json').read_text())
    assert [s['gt'] for s in result['shown']] == [
        sum(a['image_id'] == im['id'] for a in annotations['annotations'])
        for im in annotations['images']]
    assert all(s['min_score'] is None or s['min_score'] >= 0.05 for s in result['shown'])
    assert 0 <= result['mmap'] <= 1


def test_curves_come_from_every_logged_step(demo):
    root, result = demo
    rows = read_scalars(str(root / 'work'))
    # 4 images, batch 2, 2 epochs, logged every iteration; evaluated after each epoch
    assert [r['step'] for r in rows['train']] == [1, 2, 3, 4]
    assert [r['step'] for r in rows['val']] == [1, 2]
    assert rows['val'][-1]['coco/bbox_mAP'] == pytest.approx(result['mmap'])
    (log_dir,) = [p for p in (root / 'work').iterdir() if (p / 'vis_data').is_dir()]
    assert read_scalars(str(log_dir)) == rows  # one run's log dir reads the same
    with pytest.raises(FileNotFoundError, match='scalars.json'):
        read_scalars(str(root))
