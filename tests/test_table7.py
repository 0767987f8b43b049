"""The Table 7 config family, the benchmark and table tools (tiny inputs)."""
import json
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

import sn2_det  # noqa: F401
from sn2_det.analysis.benchmark import benchmark, compare, summarise, time_runs
from sn2_det.analysis.table7 import (cell_config, cell_of_config, ratio_lines,
                                     read_mmaps, table_rows, write_outputs)
from sn2_det.models.backbones.table7 import (TABLE7_BACKBONES, TABLE7_LEVELS,
                                             table7_backbone_cfg)

ROOT = Path(__file__).resolve().parents[1]


def test_family_has_twenty_cells_varied_by_name_level_and_their_weights():
    files = sorted((ROOT / 'configs/table7').glob('lighthead_*.py'))
    assert len(files) == 20
    for name in TABLE7_BACKBONES:
        for level in TABLE7_LEVELS:
            path = cell_config(name, level)
            assert cell_of_config(path) == (name, level)
            cfg = Config.fromfile(path)
            backbone = cfg.model.backbone.to_dict()
            checkpoint = backbone.pop('init_cfg')['checkpoint']
            assert backbone == dict(type='Table7Backbone', name=name, level=level)
            # the weights of the pretraining config of the same name
            stem = Path(checkpoint).stem
            assert checkpoint == f'checkpoints/{stem}.pth'
            pretrain = list((ROOT / 'configs/pretrain').rglob(f'{stem}.py'))
            assert len(pretrain) == 1, stem
            pre_cfg = Config.fromfile(str(pretrain[0]))
            pre, cell = MODELS.build(pre_cfg.model.backbone), MODELS.build(backbone)
            assert type(pre) is type(cell) and pre.widen_factor == cell.widen_factor
            if hasattr(cell, 'arch_args'):
                assert pre.arch_args() == cell.arch_args()
            assert (cfg.train_pipeline[2]['scale'] == (1200, 800))  # 800x1200


@pytest.mark.parametrize('name', TABLE7_BACKBONES)
def test_cell_builds_with_inferred_channels(name):
    cfg = Config.fromfile(cell_config(name, 140))
    model = MODELS.build(cfg.model)
    backbone = MODELS.build(table7_backbone_cfg(name, 140))
    assert model.neck.path_a[0].in_channels == backbone.out_channels[-1]
    assert model.rpn_head.rpn_conv.in_channels == backbone.out_channels[-2]
    assert backbone.out_strides == [16, 32]


def test_summarise_and_time_runs():
    calls = []
    times = time_runs(lambda: calls.append(1), 5)
    assert len(times) == 5 == len(calls) and all(t >= 0 for t in times)
    s = summarise([0.1, 0.2, 0.4], batch=4)
    assert s['img_per_s'] == pytest.approx(20.0) and s['median_ms'] == pytest.approx(200)
    assert s['spread_pct'] == pytest.approx(150.0)


def test_benchmark_and_compare_small():
    config = cell_config('shufflenet_v2', 40)
    row = benchmark(config, batch=1, shape=(128, 160), runs=2, warmup=1)
    assert row['img_per_s'] > 0 and row['runs'] == 2 and row['mode'] == 'fp32'
    cl = benchmark(config, batch=1, shape=(128, 160), runs=1, warmup=1, backbone_only=True,
                   mode='channels_last')
    assert cl['backbone_only'] and cl['mode'] == 'channels_last'
    rows = compare([config, cell_config('shufflenet_v1', 40)], batch=1, shape=(128, 160),
                   rounds=2, warmup=1)
    assert rows[0]['ratio_to_first'] == 1.0 and rows[1]['ratio_to_first'] > 0
    with pytest.raises(ValueError, match='CUDA'):
        benchmark(config, batch=1, shape=(64, 64), runs=1, warmup=0, mode='fp16')
    with pytest.raises(ValueError, match="'fp32'"):
        benchmark(config, batch=1, shape=(64, 64), runs=1, warmup=0, mode='int8')


def test_compile_modes_wrap_the_backbone_and_deploy_folds_bn():
    """Built, not run (compiling takes half a minute): 'deploy_compile' is deploy()
    and then torch.compile of the backbone, 'compile' the plain backbone compiled."""
    from sn2_det.analysis.benchmark import build_detector, prepare_model
    config = cell_config('shufflenet_v2', 40)
    for mode, folded in (('compile', False), ('deploy_compile', True)):
        model = prepare_model(build_detector(config), mode, 'cpu')
        assert isinstance(model.backbone, torch._dynamo.eval_frame.OptimizedModule)
        bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert (not bns) == folded


def test_table_outputs_and_mmap_results(tmp_path):
    speeds = {('shufflenet_v2', 140): dict(img_per_s=30.0, spread_pct=2.0),
              ('shufflenet_v1', 140): dict(img_per_s=20.0, spread_pct=3.0),
              ('mobilenet_v2', 140): dict(img_per_s=25.0, spread_pct=1.0)}
    result = tmp_path / 'metrics.json'
    result.write_text(json.dumps(dict(config=cell_config('shufflenet_v2', 140),
                                      metrics={'coco/bbox_mAP': 0.281})))
    mmaps = read_mmaps([str(result)])
    assert mmaps == {('shufflenet_v2', 140): pytest.approx(28.1)}
    rows = table_rows(speeds, mmaps)
    sn2 = next(r for r in rows if r['backbone'] == 'ShuffleNet v2')
    assert sn2['mmAP 140M'] == '28.1 (29.0)' and sn2['img/s 140M'] == '30.0 (146.0)'
    assert sn2['mmAP 40M'] == '- (22.5)'
    lines = ratio_lines(speeds)
    assert lines == ['140M: ShuffleNet v2 / ShuffleNet v1 = 1.50x (paper 1.72x)',
                     '140M: ShuffleNet v2 / MobileNet v2 = 1.20x (paper 1.32x)']
    paths = write_outputs(str(tmp_path / 'out'), speeds, mmaps, 'header')
    assert '| ShuffleNet v2 |' in Path(paths['md']).read_text()
    csv_rows = Path(paths['csv']).read_text().splitlines()
    assert len(csv_rows) == 21 and 'shufflenet_v2,140,28.1,29.0,30.00,146,2.0' in csv_rows
    assert Path(paths['png']).stat().st_size > 1000
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(dict(config='configs/lighthead_sn2.py', metrics={})))
    with pytest.raises(ValueError, match='configs/table7 cell'):
        read_mmaps([str(bad)])


def test_benchmark_tool_prints_rows_and_json(tmp_path):
    out = tmp_path / 'rows.json'
    proc = subprocess.run(
        [sys.executable, 'tools/benchmark.py', '--compare', cell_config('shufflenet_v2', 40),
         cell_config('mobilenet_v2', 40), '--batch', '1', '--shape', '96', '128',
         '--runs', '1', '--warmup', '0', '--json', str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'ratio' in proc.stdout and 'lighthead_mobilenet_v2_40m.py' in proc.stdout
    rows = json.loads(out.read_text())
    assert len(rows) == 2 and rows[0]['ratio_to_first'] == 1.0


def test_deploy_mode_changes_no_output():
    from sn2_det.analysis.benchmark import build_detector, make_inputs
    from sn2_det.engine.inference_mode import deploy
    torch.manual_seed(0)
    model = build_detector(str(ROOT / 'configs/lighthead_sn2.py'))
    for m in model.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    inputs, samples = make_inputs(1, (256, 320), 'cpu')
    with torch.no_grad():
        feats = model.extract_feat(inputs)
        before = model.predict(inputs, samples, rescale=False)[0].pred_instances
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    deploy(model)
    assert n_bn > 50 and not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    with torch.no_grad():
        feats_after = model.extract_feat(inputs)
        after = model.predict(inputs, samples, rescale=False)[0].pred_instances
    for a, b in zip(feats, feats_after):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * a.abs().max())
    assert torch.allclose(before.scores, after.scores, atol=1e-4)
    assert torch.allclose(before.bboxes, after.bboxes, atol=1e-2)


def test_zeroed_predictors_give_every_backbone_the_same_proposals():
    from sn2_det.analysis.benchmark import build_detector, make_inputs
    inputs, samples = make_inputs(1, (256, 320), 'cpu')
    proposals = []
    for name in ('shufflenet_v2', 'mobilenet_v2'):
        model = build_detector(cell_config(name, 40))
        assert model.rpn_head.rpn_cls.weight.abs().sum() == 0
        assert model.roi_head.bbox_head.fc_cls.weight.abs().sum() == 0
        with torch.no_grad():
            x = model.extract_feat(inputs)
            proposals.append(model.rpn_head.predict(x[:-1], samples, rescale=False)[0])
    assert len(proposals[0]) == len(proposals[1]) > 0
    assert torch.equal(proposals[0].bboxes, proposals[1].bboxes)


def test_compare_with_official_code_layout(tmp_path):
    """The --official path, on a stand-in for the authors' folder (network.py with
    ShuffleNetV2(model_size=...)) built from the tests' independent reference."""
    from sn2_det.analysis.official_reference import compare_with_official
    folder = tmp_path / 'ShuffleNetV2'
    folder.mkdir()
    (folder / 'blocks.py').write_text('')
    (folder / 'network.py').write_text(
        'from reference_shufflenet import OfficialLayoutNet\n\n\n'
        'class ShuffleNetV2(OfficialLayoutNet):\n'
        "    def __init__(self, model_size='1.5x'):\n"
        '        super().__init__(float(model_size[:-1]))\n')
    rows = compare_with_official(str(folder), 0.5, batch=1, shape=(64, 96), rounds=2,
                                 warmup=1)
    assert [r['config'] for r in rows] == ["authors' code (eager)", 'ours, as trained',
                                           'ours, deploy()']
    assert rows[0]['ratio_to_first'] == 1.0
    assert all(r['max_rel_diff'] <= 1e-4 for r in rows)
    assert rows[1]['max_rel_diff'] == 0.0  # same arithmetic as the authors' code
    with pytest.raises(FileNotFoundError, match='network.py'):
        compare_with_official(str(tmp_path), 0.5, batch=1, shape=(64, 64), rounds=1)


def test_time_shares_cover_the_parts():
    from sn2_det.analysis.benchmark import build_detector, make_inputs
    from sn2_det.analysis.time_shares import PARTS, time_shares
    model = build_detector(cell_config('shufflenet_v2', 40))
    inputs, samples = make_inputs(1, (128, 160), 'cpu')
    shares = time_shares(model, inputs, samples, runs=2, warmup=1)
    assert list(shares) == [*PARTS, 'total']
    assert all(shares[p]['ms'] > 0 for p in PARTS)
    assert 0.5 < sum(shares[p]['share'] for p in PARTS) <= 1.0 + 1e-6
    for module in (model.backbone, model.neck, model.roi_head.bbox_roi_extractor,
                   model.roi_head.bbox_head):  # timers removed afterwards
        assert not module._forward_hooks and not module._forward_pre_hooks
    # the stages timed are the detector's own predict
    from sn2_det.analysis.time_shares import _predict_by_stages
    with torch.no_grad():
        staged = _predict_by_stages(model, inputs, samples, lambda part: nullcontext())[0]
        whole = model.predict(inputs, samples, rescale=False)[0].pred_instances
    assert len(whole) > 0
    torch.testing.assert_close(staged.bboxes, whole.bboxes)
    torch.testing.assert_close(staged.scores, whole.scores)
