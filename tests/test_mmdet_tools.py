"""mmdet's own tools (shipped in the mmdet package under mmdet/.mim/tools), unmodified,
on the shipped toy config and the logs of its run: train, test, get_flops,
browse_dataset, confusion_matrix and analyze_logs plot_curve.

They run as a user runs them, from a folder holding the data under the config's own
data_root (data/toy_shapes/, a few generated images); nothing else is changed. test and
confusion_matrix read the toy detector trained once for the test run; mmdet's train
(the toy config's 12 epochs) and the curves of its logs are slow."""
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import cv2
import mmdet
import pytest

from sn2_det.datasets.toy_shapes import generate_toy_shapes

ROOT = Path(__file__).resolve().parents[1]
TOY = str(ROOT / 'configs/toy/lighthead_sn2_toy.py')
MMDET_TOOLS = Path(mmdet.__file__).parent / '.mim' / 'tools'
EPOCHS = 12  # the toy config's schedule


def mmdet_tool(workspace: Path, tool: str, *args) -> str:
    env = dict(os.environ, OMP_NUM_THREADS='1', MPLBACKEND='Agg')
    env.pop('PYTHONPATH', None)
    run = subprocess.run([sys.executable, str(MMDET_TOOLS / tool), *map(str, args)],
                         cwd=workspace, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f'{tool} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}'
    return run.stdout + run.stderr


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """A user's folder with two training and two validation images."""
    workspace = tmp_path_factory.mktemp('user')
    generate_toy_shapes(str(workspace / 'data/toy_shapes'), num_train=2, num_val=2, seed=4)
    return workspace


@pytest.fixture(scope='module')
def trained(workspace):
    """mmdet's tools/train.py on the toy config: each of the 12 epochs is one
    iteration."""
    mmdet_tool(workspace, 'train.py', TOY, '--work-dir', 'work')
    return workspace


def test_mmdet_tools_are_shipped_with_mmdet():
    for tool in ('train.py', 'test.py', 'analysis_tools/get_flops.py',
                 'analysis_tools/browse_dataset.py', 'analysis_tools/confusion_matrix.py',
                 'analysis_tools/analyze_logs.py'):
        assert (MMDET_TOOLS / tool).is_file(), tool


@pytest.mark.slow
def test_mmdet_train(trained):
    work = trained / 'work'
    assert (work / f'epoch_{EPOCHS}.pth').is_file()
    assert (work / 'lighthead_sn2_toy.py').is_file()  # the config as run


def test_mmdet_test(workspace, trained_toy_detector):
    _, checkpoint = trained_toy_detector
    out = mmdet_tool(workspace, 'test.py', TOY, checkpoint,
                     '--out', 'results.pkl', '--work-dir', 'test_work')
    assert 'coco/bbox_mAP' in out
    with open(workspace / 'results.pkl', 'rb') as f:
        results = pickle.load(f)
    assert len(results) == 2 and 'pred_instances' in results[0]


def test_mmdet_confusion_matrix(workspace, trained_toy_detector):
    if not (workspace / 'results.pkl').exists():
        mmdet_tool(workspace, 'test.py', TOY, trained_toy_detector[1],
                   '--out', 'results.pkl', '--work-dir', 'test_work')
    mmdet_tool(workspace, 'analysis_tools/confusion_matrix.py', TOY, 'results.pkl', 'cm')
    assert cv2.imread(str(workspace / 'cm/confusion_matrix.png')) is not None


def test_mmdet_get_flops(workspace):
    out = mmdet_tool(workspace, 'analysis_tools/get_flops.py', TOY)
    assert 'Flops:' in out and 'Params:' in out
    # The toy images are 256x256, padded to a multiple of 32 (itself).
    assert 'Input shape: (256, 256)' in out


def test_mmdet_browse_dataset(workspace):
    mmdet_tool(workspace, 'analysis_tools/browse_dataset.py', TOY, '--output-dir',
               'browse', '--not-show')
    drawn = sorted((workspace / 'browse').glob('*.png'))
    assert len(drawn) == 2
    assert cv2.imread(str(drawn[0])).shape[:2] == (256, 256)


@pytest.mark.slow
def test_mmdet_analyze_logs_plot_curve(trained):
    logs = sorted((trained / 'work').glob('*/vis_data/*.json'))
    log = next(p for p in logs if p.name != 'scalars.json')
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert sum('loss' in line for line in lines) == EPOCHS
    mmdet_tool(trained, 'analysis_tools/analyze_logs.py', 'plot_curve', log,
               '--keys', 'loss', 'loss_cls', '--out', 'loss.png')
    mmdet_tool(trained, 'analysis_tools/analyze_logs.py', 'plot_curve', log,
               '--keys', 'bbox_mAP', '--eval-interval', EPOCHS, '--out', 'map.png')
    for name in ('loss.png', 'map.png'):
        assert cv2.imread(str(trained / name)) is not None
