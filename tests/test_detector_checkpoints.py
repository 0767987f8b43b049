"""Detector checkpoints load only where they fit: a checkpoint of the toy detector is
refused by the full config in test (ours and mmdet's tools/test.py), infer,
DetInferencer, export and benchmark; load_from fine-tunes an 80-class checkpoint
into the toy config, skipping only the final layers (sn2_det.apis.detector_checkpoint).
"""
import json
import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

import sn2_det  # noqa: F401  (installs the checked loading)
from helpers import NO_WORKERS, run_python as _run
from sn2_det.apis.detector_checkpoint import (compare_state_dicts, describe_misfit,
                                              init_checked_detector, trained_with)
from sn2_det.apis.runner import load_config, set_data_root, train
from sn2_det.datasets.toy_shapes import CLASSES, generate_toy_shapes
from sn2_det.utils.checkpoint import CheckpointError, safe_torch_load
from sn2_det.utils.config import build_in_mmdet_scope

ROOT = Path(__file__).resolve().parents[1]
TOY = str(ROOT / 'configs/toy/lighthead_sn2_toy.py')
FULL = str(ROOT / 'configs/lighthead_sn2.py')
SMALL_OPTIONS = {
    **NO_WORKERS, 'train_dataloader.batch_size': 2, 'default_hooks.logger.interval': 1,
    'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 5}
SMALL = [f'{k}={v}' for k, v in SMALL_OPTIONS.items()]
# the full config reads COCO's file names: the toy images under COCO class names
FULL_ON_TOY = ['test_dataloader.dataset.ann_file=annotations/instances_val_coco.json',
               'test_dataloader.dataset.data_prefix.img=val/']
REFUSAL = (r'does not fit the detector of configs/lighthead_sn2\.py: \d+ keys do not fit '
           r'\(\d+ of another shape.*; first: backbone\.\S+: checkpoint \(\d+, \d+.*\) vs '
           r'model \(\d+, \d+.*\).*It was trained with configs/toy/lighthead_sn2_toy\.py '
           r'\(experiment lighthead_sn2_toy_\d{8}_\d{6}; LightHeadRCNN, backbone '
           r'ShuffleNetV2 widen_factor=0\.5')


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy')
    generate_toy_shapes(str(root), num_train=2, num_val=1, seed=5)
    from mmdet.datasets import CocoDataset
    ann = json.loads((root / 'annotations/instances_val.json').read_text())
    ann['categories'] = [dict(c, name=CocoDataset.METAINFO['classes'][i])
                         for i, c in enumerate(ann['categories'])]
    (root / 'annotations/instances_val_coco.json').write_text(json.dumps(ann))
    return root


@pytest.fixture(scope='module')
def toy_checkpoint(trained_toy_detector):
    """A checkpoint of the toy detector (the one trained once for the test run)."""
    return Path(trained_toy_detector[1])


def test_the_full_config_refuses_a_toy_checkpoint_in_test(toy_root, toy_checkpoint,
                                                          tmp_path):
    out = _run(['tools/test.py', FULL, str(toy_checkpoint), '--data-root', str(toy_root),
                '--work-dir', str(tmp_path / 'test'), '--cfg-options',
                *FULL_ON_TOY, f'test_evaluator.ann_file={toy_root}/annotations/'
                'instances_val_coco.json', 'test_dataloader.num_workers=0',
                'test_dataloader.persistent_workers=False'])
    assert out.returncode == 2, out.stderr[-3000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith('error: checkpoint ') and 'Traceback' not in out.stderr
    assert re.search(REFUSAL, last), last
    assert 'coco/bbox_mAP' not in out.stdout + out.stderr


def test_mmdet_tools_test_refuses_a_toy_checkpoint(toy_root, toy_checkpoint, tmp_path):
    import mmdet
    tool = Path(mmdet.__file__).parent / '.mim/tools/test.py'
    ann = f'{toy_root}/annotations/instances_val_coco.json'
    out = _run([str(tool), FULL, str(toy_checkpoint), '--work-dir',
                str(tmp_path / 'mmdet_test'), '--cfg-options',
                f'test_dataloader.dataset.data_root={toy_root}/', *FULL_ON_TOY,
                f'test_evaluator.ann_file={ann}', 'test_dataloader.num_workers=0',
                'test_dataloader.persistent_workers=False'])
    assert out.returncode != 0
    assert 'CheckpointError' in out.stderr and 'does not fit the detector of' in out.stderr
    assert 'coco/bbox_mAP' not in out.stdout + out.stderr


def test_the_full_config_refuses_a_toy_checkpoint_in_infer(toy_root, toy_checkpoint,
                                                           tmp_path):
    picture = tmp_path / 'det.png'
    out = _run(['tools/infer.py', FULL, str(toy_checkpoint),
                str(toy_root / 'val/00000.png'), '--out', str(picture)])
    assert out.returncode == 2, out.stderr[-3000:]
    assert re.search(REFUSAL, out.stderr.strip().splitlines()[-1])
    assert not picture.exists() and 'detections above' not in out.stdout
    with pytest.raises(CheckpointError, match=REFUSAL):
        init_checked_detector(FULL, str(toy_checkpoint))


def test_det_inferencer_refuses_a_toy_checkpoint(toy_checkpoint):
    from mmdet.apis import DetInferencer
    with pytest.raises(CheckpointError, match=r'does not fit the detector of configs/'
                                              r'lighthead_sn2\.py: \d+ keys do not fit'):
        DetInferencer(model=FULL, weights=str(toy_checkpoint), device='cpu')


def test_det_inferencer_loads_a_checkpoint_that_fits(toy_root, toy_checkpoint):
    """Through the loading DetInferencer.__init__ runs (its test-pipeline check comes
    after it)."""
    from mmdet.apis import DetInferencer
    cfg = Config.fromfile(TOY)
    set_data_root(cfg, str(toy_root))
    inferencer = DetInferencer.__new__(DetInferencer)
    inferencer.palette = 'none'
    model = inferencer._init_model(cfg, str(toy_checkpoint), 'cpu')
    saved = safe_torch_load(str(toy_checkpoint))['state_dict']
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    assert model.dataset_meta['classes'] == CLASSES


def test_export_and_benchmark_refuse_a_toy_checkpoint(toy_checkpoint):
    from sn2_det.analysis.benchmark import build_detector
    from sn2_det.deploy import detector_from_config
    with pytest.raises(CheckpointError, match=REFUSAL):
        detector_from_config(FULL, str(toy_checkpoint))
    with pytest.raises(CheckpointError, match=REFUSAL):
        build_detector(FULL, checkpoint=str(toy_checkpoint))
    assert build_detector(TOY, checkpoint=str(toy_checkpoint)) is not None


def test_mismatch_report_lists_keys_with_both_shapes_and_counts():
    model = {'a.weight': torch.zeros(2, 3), 'b.weight': torch.zeros(4),
             'bn.num_batches_tracked': torch.zeros(())}
    ckpt = {'a.weight': torch.zeros(5, 3), 'c.bias': torch.zeros(1)}
    fit = compare_state_dicts(model, ckpt)
    assert not fit.ok and fit.keys() == ['a.weight', 'b.weight', 'c.bias']
    assert describe_misfit(fit) == (
        '3 keys do not fit (1 of another shape, 1 missing from the checkpoint, 1 not in '
        'the model); first: a.weight: checkpoint (5, 3) vs model (2, 3), b.weight: model '
        '(4,), not in the checkpoint, c.bias: checkpoint (1,), not in the model')
    assert trained_with({}) == ''
    assert trained_with({'experiment_name': 'mine_20260101_000000'}) == \
        'a config named mine.py (experiment mine_20260101_000000)'


def _toy_model(num_classes=3, widen_factor=0.5):
    cfg = Config.fromfile(TOY)
    cfg.model.roi_head.bbox_head.num_classes = num_classes
    cfg.model.backbone.widen_factor = widen_factor
    return build_in_mmdet_scope(cfg.model)


def _train_cfg(toy_root, work, load_from):
    return load_config(TOY, str(work), str(toy_root),
                       dict(SMALL_OPTIONS, load_from=str(load_from)))


def test_load_from_fine_tunes_an_80_class_checkpoint_and_says_what_it_skipped(
        toy_root, tmp_path):
    from mmdet.datasets import CocoDataset
    coco = _toy_model(num_classes=80)
    path = tmp_path / 'coco_80.pth'
    torch.save(dict(meta=dict(dataset_meta=dict(CocoDataset.METAINFO)),
                    state_dict=coco.state_dict()), path)
    work = tmp_path / 'fine_tune'
    out = _run(['tools/train.py', TOY, '--data-root', str(toy_root), '--work-dir',
                str(work), '--cfg-options', *SMALL, f'load_from={path}'])
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    lines = [line for line in log.splitlines() if 'fine-tuning the detector of' in line]
    assert len(lines) == 1, log[-3000:]
    total = len(coco.state_dict())
    assert f'loaded {total - 2} of {total} tensors, skipped 2 of the final layers that do not fit ' \
           '(another class count; they keep their initialisation): roi_head.bbox_head.' \
           'fc_cls.weight (81, 256) -> (4, 256), roi_head.bbox_head.fc_cls.bias (81,) -> ' \
           '(4,)' in lines[0]
    assert 'The model and loaded state dict do not match' not in log
    assert 'Epoch(train) [1]' in log
    tuned = safe_torch_load(str(work / 'epoch_1.pth'))['state_dict']
    start = coco.state_dict()
    convs = [k for k, v in start.items() if k.startswith('backbone.') and v.dim() == 4]
    # one step of warm-up AdamW (lr 2e-5) away from the 80-class weights, not random
    assert max((tuned[k] - start[k]).abs().max().item() for k in convs) < 1e-3
    assert tuned['roi_head.bbox_head.fc_cls.weight'].shape == (4, 256)


def test_load_from_refuses_a_backbone_of_another_width(toy_root, tmp_path):
    path = tmp_path / 'wide.pth'
    torch.save(dict(meta={}, state_dict=_toy_model(widen_factor=1.0).state_dict()), path)
    cfg = _train_cfg(toy_root, tmp_path / 'w', path)
    with pytest.raises(CheckpointError, match=r'cannot fine-tune the detector of .*'
                                              r'lighthead_sn2_toy\.py: besides the final '
                                              r'classification / regression layers, \d+ '
                                              r'keys do not fit .*first: backbone\.'):
        train(cfg)
    assert not (tmp_path / 'w' / 'epoch_1.pth').exists()


def test_resume_is_strict_even_where_a_fine_tune_would_load(toy_root, tmp_path):
    path = tmp_path / 'coco_80.pth'
    torch.save(dict(meta={}, state_dict=_toy_model(num_classes=80).state_dict()), path)
    cfg = load_config(TOY, str(tmp_path / 'r'), str(toy_root), SMALL_OPTIONS)
    with pytest.raises(CheckpointError, match=r'coco_80.pth does not fit the detector of '
                                              r'.*lighthead_sn2_toy\.py: 2 keys do not fit '
                                              r'\(2 of another shape\); first: roi_head\.'
                                              r'bbox_head\.fc_cls\.weight: checkpoint '
                                              r'\(81, 256\) vs model \(4, 256\)'):
        train(cfg, resume=str(path))
