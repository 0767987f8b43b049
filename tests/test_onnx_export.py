"""ONNX export of backbones (every ShuffleNet V2 width, V2*, a config's backbone), the
onnxruntime check and its failure paths, tools/export_onnx.py and tools/arm_benchmark.py
(run where torch, mmcv, mmdet, mmengine and sn2_det cannot be imported)."""
import ast
import importlib.util
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from sn2_det.deploy import (ExportMismatchError, backbone_from_config, backbone_from_name,
                            check_onnx, export_backbone)

from pretrained_weights import config_with_weights

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / 'configs/lighthead_sn2.py')
BENCH = str(ROOT / 'tools/arm_benchmark.py')
SHAPE = (64, 96)
CHANNELS = {0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024),
            1.5: (176, 352, 704, 1024), 2.0: (244, 488, 976, 2048)}
BLOCKED = ('torch', 'torchvision', 'mmcv', 'mmdet', 'mmengine', 'sn2_det')


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _onnx_io(path):
    graph = onnx.load(path).graph
    dims = lambda v: [d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    return ({v.name: dims(v) for v in graph.input},
            {v.name: dims(v) for v in graph.output})


@pytest.fixture(scope='module')
def small_model(tmp_path_factory):
    """ShuffleNet V2 0.5x exported at 64x96, and its PyTorch model."""
    model = backbone_from_name('shufflenet_v2', 0.5)
    path = str(tmp_path_factory.mktemp('onnx') / 'sn2_0.5x.onnx')
    return model, export_backbone(model, path, SHAPE)


@pytest.mark.parametrize('widen_factor', [0.5, 1.0, 1.5, 2.0])
@pytest.mark.parametrize('star', [False, True])
def test_every_width_exports_and_matches(tmp_path, widen_factor, star):
    torch.manual_seed(0)
    model = backbone_from_name('shufflenet_v2', widen_factor, star=star)
    path = export_backbone(model, str(tmp_path / 'sub' / 'model.onnx'), SHAPE)
    assert path == str(tmp_path / 'sub' / 'model.onnx')
    onnx.checker.check_model(path)
    inputs, outputs = _onnx_io(path)
    assert inputs == {'input': [1, 3, 64, 96]}
    h, w = SHAPE
    assert outputs == {f'out{i}': [1, c, h // s, w // s] for i, (c, s) in
                       enumerate(zip(CHANNELS[widen_factor], (8, 16, 32, 32)))}
    diff = check_onnx(model, path)
    assert 0 <= diff <= 1e-4


def test_check_fails_when_outputs_differ(small_model):
    model, path = small_model
    state = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        with torch.no_grad():
            model.layers[3].bn.bias.add_(0.5)  # conv5 only
        with pytest.raises(ExportMismatchError, match=r'max abs difference .* \(output '
                                                    r'out3\) exceeds 0.0001'):
            check_onnx(model, path)
        with torch.no_grad():
            model.conv1.conv.weight[0, 0, 0, 0] = float('nan')
        with pytest.raises(ExportMismatchError, match='nan'):
            check_onnx(model, path)
    finally:
        model.load_state_dict(state)
    assert check_onnx(model, path) <= 1e-4
    # a tolerance below the real difference fails too, unless the difference is 0
    diff = check_onnx(model, path)
    if diff > 0:
        with pytest.raises(ExportMismatchError):
            check_onnx(model, path, atol=diff / 2)


def test_check_fails_on_other_outputs(small_model):
    model, path = small_model
    fewer = backbone_from_name('shufflenet_v2', 0.5, out_indices=(0, 1))
    own = fewer.state_dict()  # stage2 and stage3 only: the later layers are not built
    fewer.load_state_dict({k: v for k, v in model.state_dict().items() if k in own})
    with pytest.raises(ExportMismatchError, match='has 4 outputs'):
        check_onnx(fewer, path)


def test_export_rejects_bad_arguments(tmp_path):
    model = backbone_from_name('shufflenet_v2', 0.5)
    for shape in [(64,), (64, 0), (64.0, 96), 'ab']:
        with pytest.raises(ValueError, match=r'shape must be two positive ints \(H, W\)'):
            export_backbone(model, str(tmp_path / 'x.onnx'), shape)
    with pytest.raises(ValueError, match='batch must be a positive int'):
        export_backbone(model, str(tmp_path / 'x.onnx'), SHAPE, batch=0)
    with pytest.raises(ValueError, match=r"backbone must be one of \('shufflenet_v2',\)"):
        backbone_from_name('resnet50')
    with pytest.raises(ValueError, match=r'widen_factor must be one of \(0.5, 1.0, 1.5, '
                                         r'2.0\), got 0.7'):
        backbone_from_name('shufflenet_v2', 0.7)
    with pytest.raises(FileNotFoundError, match='config file not found: no/such.py'):
        backbone_from_config('no/such.py')
    headless = tmp_path / 'no_backbone.py'
    headless.write_text("model = dict(type='RPN')\n")
    with pytest.raises(ValueError, match='has no model.backbone to export'):
        backbone_from_config(str(headless))


def test_export_batch(tmp_path):
    model = backbone_from_name('shufflenet_v2', 0.5, out_indices=(3,))
    path = export_backbone(model, str(tmp_path / 'b2.onnx'), SHAPE, batch=2)
    inputs, outputs = _onnx_io(path)
    assert inputs == {'input': [2, 3, 64, 96]} and outputs == {'out3': [2, 1024, 2, 3]}
    assert check_onnx(model, path) <= 1e-4


def test_cli_exports_a_config_backbone(tmp_path, capsys):
    out = str(tmp_path / 'lighthead.onnx')
    # the shipped config with its ImageNet weights (a stand-in file) where it loads them
    config = config_with_weights(CONFIG, tmp_path)
    _load_tool('export_onnx').main([config, '--shape', '64', '96', '--out', out])
    printed = capsys.readouterr().out
    assert 'max abs difference from PyTorch (onnxruntime):' in printed
    # configs/lighthead_sn2.py: out_indices (1, 2), stage3 and stage4 of 1.0x
    assert _onnx_io(out) == ({'input': [1, 3, 64, 96]},
                             {'out1': [1, 232, 4, 6], 'out2': [1, 464, 2, 3]})
    diff = float(printed.rsplit(':', 1)[1].split('<=')[0])
    assert diff <= 1e-4


@pytest.mark.parametrize('argv, message', [
    (['--out', 'x.onnx'], 'give either a CONFIG or --backbone NAME'),
    ([CONFIG, '--backbone', 'shufflenet_v2', '--out', 'x.onnx'], 'not both'),
    (['--backbone', 'shufflenet_v2', '--widen-factor', '0.7', '--out', 'x.onnx'],
     r'widen_factor must be one of (0.5, 1.0, 1.5, 2.0), got 0.7'),
    (['--backbone', 'resnet', '--out', 'x.onnx'], "invalid choice: 'resnet'"),
    (['no/such.py', '--out', 'x.onnx'], 'config file not found: no/such.py'),
    (['--backbone', 'shufflenet_v2', '--shape', '0', '64', '--out', 'x.onnx'],
     'shape must be two positive ints'),
])
def test_cli_rejects_bad_input(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        _load_tool('export_onnx').main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'x.onnx').exists()


def test_cli_exits_nonzero_when_check_fails(tmp_path):
    """A weight changed after the export: the tool's check must fail with status 1."""
    out = str(tmp_path / 'bad.onnx')
    code = (
        'import runpy, sys, torch\n'
        'export = torch.onnx.export\n'
        'def export_then_perturb(model, *args, **kwargs):\n'
        '    export(model, *args, **kwargs)\n'
        '    with torch.no_grad():\n'
        '        model.conv1.conv.weight.add_(1.0)\n'
        'torch.onnx.export = export_then_perturb\n'
        f'sys.argv = [{str(ROOT / "tools/export_onnx.py")!r}] + sys.argv[1:]\n'
        'runpy.run_path(sys.argv[0], run_name="__main__")\n')
    proc = subprocess.run(
        [sys.executable, '-c', code, '--backbone', 'shufflenet_v2', '--widen-factor',
         '0.5', '--shape', '64', '96', '--out', out], cwd=ROOT, capture_output=True,
        text=True, env={**os.environ, 'OMP_NUM_THREADS': '1'}, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'FAILED:' in proc.stderr and 'exceeds 0.0001' in proc.stderr
    assert 'max abs difference from PyTorch' not in proc.stdout
    assert os.path.isfile(out)


def test_arm_benchmark_imports_nothing_but_stdlib_numpy_and_the_runtimes():
    """Anywhere in the file: the stdlib, numpy and the three runtimes; at module level
    only the stdlib and numpy, so a board with one runtime runs it."""
    tree = ast.parse(Path(BENCH).read_text())

    def imported(nodes):
        names = {alias.name.split('.')[0] for node in nodes
                 if isinstance(node, ast.Import) for alias in node.names}
        return names | {node.module.split('.')[0] for node in nodes
                        if isinstance(node, ast.ImportFrom)}
    assert imported(ast.walk(tree)) - set(sys.stdlib_module_names) == \
        {'numpy', 'onnxruntime', 'ncnn', 'openvino'}
    assert imported(tree.body) - set(sys.stdlib_module_names) == {'numpy'}


def run_benchmark_without_torch(args, cwd):
    """tools/arm_benchmark.py with ``args`` in a Python where torch, mmcv, mmdet,
    mmengine and sn2_det cannot be imported."""
    code = ('import runpy, sys\n'
            f'for name in {BLOCKED!r}:\n'
            '    sys.modules[name] = None\n'
            'try:\n'
            '    import torch\n'
            'except ImportError:\n'
            '    pass\n'
            'else:\n'
            '    raise SystemExit("torch is importable")\n'
            f'sys.argv = [{BENCH!r}] + sys.argv[1:]\n'
            'runpy.run_path(sys.argv[0], run_name="__main__")\n')
    return subprocess.run([sys.executable, '-c', code, *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, 'OMP_NUM_THREADS': '1'},
                          timeout=300)


def test_arm_benchmark_runs_without_torch(tmp_path, small_model):
    _, model = small_model
    out = tmp_path / 'result.json'
    proc = run_benchmark_without_torch(
        [model, '--runs', '3', '--warmup', '1', '--json', str(out)], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'latency ms: median' in proc.stdout and 'images/s' in proc.stdout
    result = json.loads(out.read_text())
    assert result['model'] == 'sn2_0.5x.onnx'
    assert len(result['latencies_ms']) == 3 and all(t > 0 for t in result['latencies_ms'])
    assert result['min_ms'] <= result['median_ms'] <= result['max_ms']
    assert result['median_ms'] == sorted(result['latencies_ms'])[1]
    assert result['images_per_s'] == pytest.approx(1e3 / result['median_ms'])
    assert (result['threads'], result['batch'], result['warmup'], result['runs']) == \
        (1, 1, 1, 3)
    assert result['shape'] is None and result['inputs'] == {'input': [1, 3, 64, 96]}
    assert result['machine'] == platform.machine()
    assert isinstance(result['processor'], str)
    assert result['onnxruntime'] == ort.__version__


@pytest.fixture
def dynamic_model(tmp_path):
    """A one-op ONNX model with a dynamic batch, height and width."""
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 3, 'H', 'W'])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N', 3, 'H', 'W'])
    graph = helper.make_graph([helper.make_node('Relu', ['x'], ['y'])], 'relu', [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)],
                              ir_version=8)
    path = str(tmp_path / 'dynamic.onnx')
    onnx.save(model, path)
    return path


def test_arm_benchmark_fills_dynamic_dims(dynamic_model):
    bench = _load_tool('arm_benchmark')
    session = bench.make_session(dynamic_model, threads=2)
    feeds = bench.make_inputs(session, batch=2, shape=(32, 48))
    assert feeds['x'].shape == (2, 3, 32, 48) and feeds['x'].dtype == np.float32
    with pytest.raises(ValueError, match=r"dynamic dim 2 \('H'.*pass --shape H W"):
        bench.make_inputs(session, batch=2)
    result = bench.benchmark(dynamic_model, threads=1, batch=2, shape=(32, 48),
                             warmup=0, runs=2)
    assert result['inputs'] == {'x': [2, 3, 32, 48]} and result['shape'] == [32, 48]
    assert result['images_per_s'] == pytest.approx(2e3 / result['median_ms'])


def test_arm_benchmark_rejects_bad_input(small_model, capsys):
    _, model = small_model
    bench = _load_tool('arm_benchmark')
    for argv, message in [
            ([model, '--batch', '2'], "input 'input' has fixed dim 0 = 1"),
            ([model, '--shape', '32', '32'], 'fixed dim 2 = 64'),
            ([model, '--threads', '0'], 'threads must be a positive int, got 0'),
            ([model, '--runs', '0'], 'need warmup >= 0 and runs >= 1'),
            (['no/such.onnx'], 'model file not found: no/such.onnx')]:
        with pytest.raises(SystemExit) as exit_info:
            bench.main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    # a fixed size that agrees with the request is fine
    session = bench.make_session(model)
    assert bench.make_inputs(session, 1, (64, 96))['input'].shape == (1, 3, 64, 96)


def test_benchmark_takes_a_fixed_batch_from_the_model(tmp_path):
    path = export_backbone(backbone_from_name('shufflenet_v2', 0.5), str(tmp_path / 'b2.onnx'),
                           shape=(64, 64), batch=2)
    bench = _load_tool('arm_benchmark')
    result = bench.benchmark(path, warmup=0, runs=1)
    assert result['batch'] == 2 and result['inputs'] == {'input': [2, 3, 64, 64]}
    with pytest.raises(ValueError, match='pass --batch 2'):
        bench.benchmark(path, batch=1, warmup=0, runs=1)
