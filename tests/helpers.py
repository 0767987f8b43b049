"""What several test files share: the repository's paths, a free TCP port, data-loader
options for a few images, a tool of the repository run as a user runs it, and the
toy detector trained on the toy dataset (the ``trained_toy_detector`` fixture of
``conftest.py`` trains it once for the whole test run), and tiny toy data under COCO's
names for the COCO configs."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOY = str(ROOT / 'configs/toy/lighthead_sn2_toy.py')

# Data loaders in the test's own process, no persistent workers: for runs of a few
# images (keys of --cfg-options / load_config's cfg_options).
NO_WORKERS = {f'{split}_dataloader.{key}': value
              for split in ('train', 'val', 'test')
              for key, value in (('num_workers', 0), ('persistent_workers', False))}

# The toy config trained 96 iterations on the toy dataset made with the bundled
# defaults (64 of its 600 training images, batch 8, 12 epochs; warm-up over the first
# 10 iterations, then a constant learning rate; no validation): a detector that finds
# the shapes, bbox mmAP 0.04 on the 100 held-out images (0.007 after 64 iterations,
# below what tests/test_int8.py and tests/test_ncnn_detector.py need).
TRAIN_OPTIONS = ['train_dataloader.batch_size=8', 'train_dataloader.dataset.indices=64',
                 *(f'{k}={v}' for k, v in NO_WORKERS.items()),
                 'val_dataloader=None', 'val_cfg=None', 'val_evaluator=None',
                 'train_cfg.max_epochs=12',
                 'param_scheduler.0.end=10', 'param_scheduler.1.eta_min_ratio=1.0',
                 'default_hooks.checkpoint.interval=12', 'default_hooks.logger.interval=8']


def free_port() -> str:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def tool_env(**extra) -> dict:
    """The environment a tool of the repository runs in: the checkout importable, one
    OpenMP thread (the test process keeps the other core)."""
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1', **extra)


def run_python(args, cwd=ROOT, timeout=600, env=None) -> subprocess.CompletedProcess:
    """``python ARGS`` (a tool and its arguments) in its own process, from the
    repository root, output captured as text."""
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd,
                          env=tool_env() if env is None else env, capture_output=True,
                          text=True, timeout=timeout)


def train_toy_detector(root: Path, work: Path) -> str:
    """Train the toy detector through tools/train.py (see TRAIN_OPTIONS) on the toy
    dataset made with the bundled defaults at ``root``; returns its checkpoint."""
    from sn2_det.datasets.toy_shapes import generate_toy_shapes
    generate_toy_shapes(str(root))
    run = run_python(['tools/train.py', TOY, '--data-root', root, '--work-dir', work,
                      '--cfg-options', *TRAIN_OPTIONS], timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]
    return str(work / 'epoch_12.pth')


def tiny_toy_and_coco(toy: Path, coco: Path) -> None:
    """A tiny toy dataset at ``toy`` (8 training and 4 held-out 64x64 images, at most 2
    shapes each) and the same images at ``coco`` under COCO's file names and its first
    three class names, every box also a box-shaped polygon (for Mask R-CNN): what the
    COCO configs read, with only the data root changed."""
    from sn2_det.datasets.toy_shapes import generate_toy_shapes
    generate_toy_shapes(str(toy), num_train=8, num_val=4, image_size=(64, 64),
                        max_objects=2, seed=5)
    (coco / 'annotations').mkdir(parents=True)
    for split in ('train', 'val'):
        (coco / f'{split}2017').symlink_to(toy / split)
        anns = json.loads((toy / 'annotations' / f'instances_{split}.json').read_text())
        for category, name in zip(anns['categories'], ('person', 'bicycle', 'car')):
            category['name'] = name
        for ann in anns['annotations']:
            x, y, w, h = ann['bbox']
            ann['segmentation'] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
        (coco / 'annotations' / f'instances_{split}2017.json').write_text(json.dumps(anns))
