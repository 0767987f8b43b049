"""Backbones to ncnn with pnnx: every ShuffleNet V2 width and V2* within 1e-3
relative of PyTorch with ncnn's fp16 options off, where the fp32 difference came from
(pnnx's fp16 weights), tools/export_ncnn.py and its errors, layers ncnn lacks named,
and tools/arm_benchmark.py on all three runtimes where torch cannot be imported."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ncnn = pytest.importorskip('ncnn', reason='ncnn is an optional extra: pip install '
                                          '-r requirements/deploy.txt')
pytest.importorskip('pnnx', reason='pnnx is an optional extra: pip install '
                                   '-r requirements/deploy.txt')

from pretrained_weights import config_with_weights  # noqa: E402
from test_onnx_export import BENCH, _load_tool, run_benchmark_without_torch  # noqa: E402

from sn2_det.deploy import (backbone_from_config, backbone_from_name,  # noqa: E402
                            export_backbone)
from sn2_det.deploy.arm_benchmark import read_ncnn_param  # noqa: E402
from sn2_det.deploy.ncnn_export import (NcnnConversionError, check_ncnn,  # noqa: E402
                                        convert_onnx, export_backbone_ncnn)

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / 'configs/lighthead_sn2.py')
SHAPE = (64, 96)
CHANNELS = {0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024),
            1.5: (176, 352, 704, 1024), 2.0: (244, 488, 976, 2048)}


def _io(param):
    layers = read_ncnn_param(param)
    inputs = [(layer[3][0], layer[4]) for layer in layers if layer[0] == 'Input']
    produced = {b for layer in layers for b in layer[3]}
    consumed = {b for layer in layers for b in layer[2]}
    return inputs, sorted(produced - consumed)


@pytest.fixture(scope='module')
def small(tmp_path_factory):
    """ShuffleNet V2 0.5x at 64x96 (seeded weights): the PyTorch model and its ncnn and
    ONNX files."""
    import torch
    torch.manual_seed(0)
    model = backbone_from_name('shufflenet_v2', 0.5)
    tmp = tmp_path_factory.mktemp('ncnn')
    param = export_backbone_ncnn(model, str(tmp / 'sn2_0.5x.ncnn.param'), SHAPE)
    onnx_path = export_backbone(model, str(tmp / 'sn2_0.5x.onnx'), SHAPE)
    return model, param, onnx_path


@pytest.mark.parametrize('widen_factor', [0.5, 1.0, 1.5, 2.0])
@pytest.mark.parametrize('star', [False, True])
def test_every_width_converts_within_1e3(tmp_path, widen_factor, star):
    model = backbone_from_name('shufflenet_v2', widen_factor, star=star)
    param = export_backbone_ncnn(model, str(tmp_path / 'sub' / 'm.ncnn.param'), SHAPE)
    assert os.path.isfile(tmp_path / 'sub' / 'm.ncnn.bin')
    inputs, outputs = _io(param)
    assert inputs == [('input', {'0': '96', '1': '64', '2': '3'})]
    assert outputs == ['out0', 'out1', 'out2', 'out3']
    result = check_ncnn(model, param)
    assert set(result['fp32']) == set(result['fp16']) == {'out0', 'out1', 'out2', 'out3'}
    assert max(d['rel'] for d in result['fp32'].values()) <= 1e-4  # 1e-3 is the limit
    # fp16 arithmetic is measured too; on a CPU without fp16 it equals fp32
    assert all(d['rel'] >= 0 for d in result['fp16'].values())
    # fp32 weights: 4 bytes a parameter (plus ncnn's small per-layer tags)
    params = sum(p.numel() for p in model.parameters())
    assert os.path.getsize(tmp_path / 'sub' / 'm.ncnn.bin') >= 3.9 * params


def test_fp16_weights_are_the_fp32_difference(tmp_path, small):
    """pnnx's default, fp16 weights in the .bin, gives a relative difference of ~1e-3
    with ncnn computing in fp32 (1.05e-3 once in CI; measured here, so no limit);
    our fp32 weights bring it to ~1e-6."""
    model, param, _ = small
    half = export_backbone_ncnn(model, str(tmp_path / 'half.ncnn.param'), SHAPE,
                                fp16_weights=True)
    ours = max(d['rel'] for d in check_ncnn(model, param)['fp32'].values())
    pnnx_default = max(d['rel'] for d in check_ncnn(model, half, rtol=float('inf'))['fp32']
                       .values())
    assert pnnx_default > 1e-4 and pnnx_default > 20 * ours, (pnnx_default, ours)
    assert os.path.getsize(tmp_path / 'half.ncnn.bin') < 0.6 * os.path.getsize(
        param[:-len('.param')] + '.bin')


def test_check_fails_when_outputs_differ(small):
    from sn2_det.deploy import ExportMismatchError
    model, param, _ = small
    state = {k: v.clone() for k, v in model.state_dict().items()}
    import torch
    try:
        with torch.no_grad():
            model.layers[3].bn.bias.add_(0.5)
        with pytest.raises(ExportMismatchError, match=r'fp16 options off: max difference '
                                                    r'.* relative \(output out3\) exceeds '
                                                    r'0.001'):
            check_ncnn(model, param)
    finally:
        model.load_state_dict(state)


def test_config_backbone_and_cli(tmp_path, capsys):
    out = str(tmp_path / 'lh.ncnn.param')
    # the shipped config with its ImageNet weights (a stand-in file) where it loads them
    config = config_with_weights(CONFIG, tmp_path)
    _load_tool('export_ncnn').main([config, '--shape', '64', '96', '--out', out])
    printed = capsys.readouterr().out
    assert f'wrote {out} (+ .bin): input 1x3x64x96' in printed
    # configs/lighthead_sn2.py: out_indices (1, 2)
    assert _io(out)[1] == ['out1', 'out2']
    for name in ('out1', 'out2'):
        line = next(l for l in printed.splitlines() if l.strip().startswith(name + ':'))
        assert 'fp16 options off' in line and '; on ' in line
    worst = float(printed.rsplit('off: ', 1)[1].split('<=')[0])
    assert worst <= 1e-3


@pytest.mark.parametrize('argv, message', [
    (['--backbone', 'shufflenet_v2', '--batch', '2', '--out', 'x.param'],
     '--batch must be 1: ncnn runs one image at a time'),
    (['--backbone', 'shufflenet_v2', '--out', 'x.onnx'], '--out must end in .param'),
    (['--out', 'x.param'], 'give either a CONFIG or --backbone NAME'),
    (['--backbone', 'shufflenet_v2', '--widen-factor', '0.7', '--out', 'x.param'],
     'widen_factor must be one of (0.5, 1.0, 1.5, 2.0), got 0.7'),
    (['no/such.py', '--out', 'x.param'], 'config file not found: no/such.py'),
])
def test_cli_rejects_bad_input(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        _load_tool('export_ncnn').main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'x.param').exists()


def test_layer_ncnn_lacks_is_named(tmp_path):
    """An op pnnx cannot map to an ncnn layer (ONNX NonZero) is named."""
    from onnx import TensorProto, helper, save
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info('y', TensorProto.INT64, [4, None])
    graph = helper.make_graph([helper.make_node('Relu', ['x'], ['r']),
                               helper.make_node('NonZero', ['r'], ['y'])], 'nz', [x], [y])
    path = str(tmp_path / 'nz.onnx')
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)],
                           ir_version=8), path)
    with pytest.raises(NcnnConversionError, match=r'converts to layers ncnn does not '
                                                  r'have: NonZero \(layer NonZero_1\)'):
        convert_onnx(path, str(tmp_path / 'nz.param'), [1, 3, 8, 8])


def test_benchmark_all_runtimes_without_torch(tmp_path, small):
    _, param, onnx_path = small
    for runtime, model, version in [('ncnn', param, ncnn.__version__),
                                    ('onnxruntime', onnx_path, None),
                                    ('openvino', onnx_path, None)]:
        if runtime == 'openvino' and importlib.util.find_spec('openvino') is None:
            pytest.skip('openvino is an optional extra: pip install -r requirements/deploy.txt')
        out = tmp_path / f'{runtime}.json'
        proc = run_benchmark_without_torch(
            [model, '--runtime', runtime, '--runs', '3', '--warmup', '1', '--json',
             str(out)], tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        result = json.loads(out.read_text())
        assert result['runtime'] == runtime and result['threads'] == 1
        assert result['batch'] == 1 and len(result['latencies_ms']) == 3
        assert result['inputs'] == {'input': [1, 3, 64, 96]}
        # every output computed and returned
        assert result['outputs'] == {f'out{i}': [1, c, 64 // s, 96 // s] for i, (c, s) in
                                     enumerate(zip(CHANNELS[0.5], (8, 16, 32, 32)))}
        assert 'precision:' in proc.stdout and result['precision']
        if runtime == 'ncnn':
            assert result['ncnn'] == version
            assert result['precision']['use_fp16_arithmetic'] is False
        if runtime == 'openvino':
            assert result['precision']['INFERENCE_PRECISION_HINT'] == 'f32'


def test_openvino_models_freed_in_order_leave_signals_working(small):
    """Two OpenVINO models freed first-made-first, then a Python signal handler runs.
    With a Core per model the process died here with SIGSEGV: OpenVINO's CPU plugin
    swaps the main thread's signal stack and, unloaded out of order, left it on freed
    memory (what killed a one-process ``make test`` at torch's SIGCHLD handler)."""
    if importlib.util.find_spec('openvino') is None:
        pytest.skip('openvino is an optional extra: pip install -r requirements/deploy.txt')
    onnx_path = small[2]
    code = ('import gc, importlib.util, os, signal, sys\n'
            f'spec = importlib.util.spec_from_file_location("bench", {BENCH!r})\n'
            'bench = importlib.util.module_from_spec(spec)\n'
            'spec.loader.exec_module(bench)\n'
            f'first = bench.OpenVINOModel({onnx_path!r})\n'
            f'second = bench.OpenVINOModel({onnx_path!r}, fp16=True)\n'
            'del first; gc.collect()\n'
            'del second; gc.collect()\n'
            'signal.signal(signal.SIGUSR1, lambda *_: print("handled", flush=True))\n'
            'os.kill(os.getpid(), signal.SIGUSR1)\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=300, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0 and 'handled' in proc.stdout, (proc.returncode,
                                                                proc.stderr[-2000:])


def test_compare_interleaves_and_gives_ratios(tmp_path, small):
    _, param, onnx_path = small
    out = tmp_path / 'compare.json'
    proc = run_benchmark_without_torch(
        ['--compare', f'onnxruntime={onnx_path}', f'ncnn={param}', f'ncnn:fp16={param}',
         '--runs', '4', '--warmup', '1', '--json', str(out)], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    assert [r['label'] for r in results] == ['onnxruntime', 'ncnn', 'ncnn:fp16']
    assert results[0]['ratio'] == 1.0
    for r in results:
        assert r['ratio'] == pytest.approx(r['median_ms'] / results[0]['median_ms'])
        assert r['interleaved'] == 3 and len(r['latencies_ms']) == 4
    assert results[2]['precision']['use_fp16_storage'] is True
    assert proc.stdout.count('ratio ') == 3


def test_benchmark_rejects_bad_specs(small, capsys):
    _, param, onnx_path = small
    bench = _load_tool('arm_benchmark')
    for argv, message in [
            (['--compare', f'tflite={onnx_path}'], "RUNTIME one of ('onnxruntime', "
                                                   "'ncnn', 'openvino')"),
            ([onnx_path, '--compare', onnx_path], 'give a MODEL or --compare'),
            ([param, '--runtime', 'onnxruntime'], 'use --runtime ncnn'),
            ([onnx_path, '--fp16'], 'no fp16 option on the CPU'),
            ([onnx_path, '--runtime', 'ncnn'], 'ncnn runs a .param file')]:
        with pytest.raises(SystemExit) as exit_info:
            bench.main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_ncnn_extracts_every_output(small):
    """Timing one early output would skip the later stages: every output is run."""
    bench = _load_tool('arm_benchmark')
    _, param, _ = small
    model = bench.load_model(param)
    assert model.output_names == ['out0', 'out1', 'out2', 'out3']
    outputs = model.run(bench.make_inputs(model))
    assert [o.shape for o in outputs] == [(1, c, 64 // s, 96 // s) for c, s in
                                          zip(CHANNELS[0.5], (8, 16, 32, 32))]
    assert all(np.isfinite(o).all() and o.std() > 0 for o in outputs)


TABLE7 = sorted(p.name for p in (ROOT / 'configs/table7').glob('lighthead_*.py'))


@pytest.mark.slow
@pytest.mark.parametrize('config', TABLE7)
def test_table7_backbones_convert(tmp_path, config):
    model = backbone_from_config(config_with_weights(str(ROOT / 'configs/table7' / config),
                                                     tmp_path))
    param = export_backbone_ncnn(model, str(tmp_path / 'b.ncnn.param'), SHAPE)
    result = check_ncnn(model, param)
    print(config, {k: round(v['rel'], 8) for k, v in result['fp32'].items()})
    assert max(d['rel'] for d in result['fp32'].values()) <= 1e-3
