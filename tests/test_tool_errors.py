"""Bad input to the tools a user calls is one line 'error: ...' naming the key or file,
exit status 2, before any long work (nothing trained, timed or written), and
tools/infer.py reads images through the safe decoder and never writes over an input."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from sn2_det.datasets.toy_shapes import CLASSES, generate_toy_shapes
from sn2_det.utils.cli import run_tool

ROOT = Path(__file__).resolve().parents[1]
TOY = str(ROOT / 'configs/toy/lighthead_sn2_toy.py')


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fails(capsys, monkeypatch, tool, argv):
    """Run ``tools/<tool>.py argv`` as its ``__main__`` block does; return the one
    line it printed to stderr (asserting exit 2 and nothing more)."""
    monkeypatch.delenv('SN2_DET_DEBUG', raising=False)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_tool(_tool(tool).main, argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith('error: '), err
    return err[-1]


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy')
    generate_toy_shapes(str(root), num_train=2, num_val=1, image_size=(64, 64), seed=1)
    return str(root)


@pytest.fixture(scope='module')
def bare_state_dict(tmp_path_factory):
    """The toy detector's weights as a bare state dict: no ``meta``, no class names."""
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    import sn2_det  # noqa: F401
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(Config.fromfile(TOY).model)
    path = tmp_path_factory.mktemp('bare') / 'bare.pth'
    torch.save(model.state_dict(), path)
    return str(path)


@pytest.mark.parametrize('option, message', [
    ('model.backbone.widen_factr=1.0',
     "error: model.backbone.widen_factr: ShuffleNetV2 has no argument 'widen_factr' (did "
     "you mean 'widen_factor'?); its arguments are widen_factor, out_indices"),
    ('model.neck.mid_chanels=8',
     "error: model.neck.mid_chanels: LargeSeparableConv has no argument 'mid_chanels' "
     "(did you mean 'mid_channels'?)"),
    ('model.backbone.out_indices=(1,0)',
     'error: model.backbone.out_indices gives outputs at strides [16, 8]: LightHeadRCNN '
     'takes them shallow to deep'),
    ('train_dataloader.batch_size=0',
     'error: train_dataloader.batch_size must be a positive int, got 0 (int)'),
    ('optim_wrapper.optimizer.lr=abc',
     "error: optim_wrapper.optimizer.lr must be a number >= 0 (default of AdamW: 0.001), "
     "got 'abc' (str)"),
    ('optim_wrapper.optimizer.weight_decy=0.1',
     "error: optim_wrapper.optimizer.weight_decy: AdamW has no argument 'weight_decy' "
     "(did you mean 'weight_decay'?); its arguments are lr, betas, eps, weight_decay"),
    ('train_cfg.max_epochs=0',
     'error: train_cfg.max_epochs must be a positive int, got 0 (int): nothing would be '
     'trained'),
], ids=['unknown_key', 'unknown_neck_key', 'out_indices', 'batch_size', 'lr',
        'unknown_optimizer_key', 'max_epochs'])
def test_train_refuses_a_bad_option_before_the_run(tmp_path, capsys, monkeypatch, toy_root,
                                                   option, message):
    work = tmp_path / 'work'
    line = _fails(capsys, monkeypatch, 'train',
                  [TOY, '--data-root', toy_root, '--work-dir', str(work), '--cfg-options',
                   option])
    assert line.startswith(message), line
    assert not work.exists()  # refused before the runner: nothing built, nothing written


def test_an_unknown_key_in_a_config_file_is_named(tmp_path, capsys, monkeypatch, toy_root):
    config = tmp_path / 'mine.py'
    config.write_text(f'_base_ = {TOY!r}\nmodel = dict(backbone=dict(widen_factr=1.0))\n')
    line = _fails(capsys, monkeypatch, 'train',
                  [str(config), '--data-root', toy_root, '--work-dir', str(tmp_path / 'w')])
    assert line.startswith("error: model.backbone.widen_factr: ShuffleNetV2 has no "
                           "argument 'widen_factr' (did you mean 'widen_factor'?)")


def test_a_cfg_option_without_a_value_is_named(tmp_path, capsys, monkeypatch):
    line = _fails(capsys, monkeypatch, 'train',
                  [TOY, '--cfg-options', 'model.backbone.widen_factor'])
    assert line == ("error: --cfg-options: 'model.backbone.widen_factor' is not KEY=VALUE "
                    "(e.g. model.backbone.widen_factor=1.5 or train_cfg.max_epochs=12)")


def test_a_config_with_a_syntax_error_is_named_with_its_line(tmp_path, capsys, monkeypatch):
    config = tmp_path / 'broken.py'
    config.write_text("_base_ = 'x.py'\nmodel = dict(backbone=dict(widen_factor=1.0)\n"
                      "train_cfg = dict()\n")
    for tool, extra in (('train', []), ('test', ['unused.pth'])):
        line = _fails(capsys, monkeypatch, tool, [str(config), *extra])
        assert line.startswith(f'error: config {config} line 2: syntax error'), line


def test_test_refuses_an_out_file_mmdet_cannot_write(tmp_path, capsys, monkeypatch,
                                                     toy_root):
    line = _fails(capsys, monkeypatch, 'test',
                  [TOY, 'unused.pth', '--data-root', toy_root, '--out',
                   str(tmp_path / 'preds.json')])
    assert line.startswith(f"error: --out {tmp_path / 'preds.json'}: mmdet's "
                           'DumpDetResults writes the raw predictions as a pickle, so the '
                           'file must end in .pkl')


def test_train_tool_prints_one_line_without_a_traceback(tmp_path, toy_root):
    """The whole path of a user: a process, its stderr and its exit status."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    env.pop('SN2_DET_DEBUG', None)
    out = subprocess.run([sys.executable, 'tools/train.py', TOY, '--data-root', toy_root,
                          '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                          'model.backbone.widen_factr=1.0'],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert 'Traceback' not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith(
        'error: model.backbone.widen_factr: ShuffleNetV2 has no argument')


def test_table7_reads_the_results_before_timing(tmp_path, capsys, monkeypatch):
    from sn2_det.analysis import table7
    timed = []
    monkeypatch.setattr(table7, 'measure_speeds', lambda *a, **k: timed.append(1) or {})
    bad = tmp_path / 'metrics.json'
    bad.write_text('{"config": ')
    for path, message in [(tmp_path / 'none.json', f'error: --results {tmp_path}/none.json: '
                                                   'no such file'),
                          (bad, f'error: --results {bad}: not a JSON file of tools/test.py '
                                '--metrics-json')]:
        line = _fails(capsys, monkeypatch, 'table7',
                      ['--results', str(path), '--out-dir', str(tmp_path / 'out')])
        assert line.startswith(message), line
    assert not timed and not (tmp_path / 'out').exists()


@pytest.fixture
def garbage_onnx(tmp_path):
    path = tmp_path / 'garbage.onnx'
    path.write_bytes(b'this is not a protobuf \x00\xff' * 10)
    return str(path)


def test_arm_benchmark_refuses_a_garbage_model_and_a_missing_json_folder(
        tmp_path, capsys, garbage_onnx):
    bench = _tool('arm_benchmark')  # runs without sn2_det: prints the line itself
    for argv, message in [
            ([garbage_onnx], f'error: {garbage_onnx} is not an ONNX model onnxruntime can '
                             'load: '),
            ([garbage_onnx, '--json', str(tmp_path / 'no' / 'r.json')],
             f"error: --json {tmp_path / 'no' / 'r.json'}: the folder {tmp_path / 'no'} "
             'does not exist')]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            bench.main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(message), err


def test_quantize_onnx_refuses_a_garbage_model(tmp_path, capsys, monkeypatch, garbage_onnx):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_tool(_tool('quantize_onnx').main, [garbage_onnx, '--out',
                                               str(tmp_path / 'int8.onnx')])
    assert exit_info.value.code == 2
    assert f'{garbage_onnx} is not an ONNX model onnxruntime can load' in \
        capsys.readouterr().err
    assert not (tmp_path / 'int8.onnx').exists()


# tools/infer.py


def _png(path, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    ok, data = cv2.imencode(os.fsdecode(path)[-4:], image)
    assert ok
    Path(os.fsdecode(path)).write_bytes(data.tobytes())
    return image


def test_infer_refuses_a_truncated_jpeg(tmp_path, capsys, monkeypatch):
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    data = cv2.imencode('.jpg', image)[1].tobytes()
    cut = tmp_path / 'cut.jpg'
    cut.write_bytes(data[:len(data) // 2])
    assert cv2.imread(str(cut)) is not None  # opencv alone decodes half a picture
    out = tmp_path / 'dets.png'
    line = _fails(capsys, monkeypatch, 'infer', [TOY, 'unused.pth', str(cut), '--out',
                                                 str(out)])
    assert line.startswith(f'error: cannot read image {cut}: truncated JPEG'), line
    assert not out.exists()


@pytest.mark.parametrize('case', ['same_folder', 'same_image', 'same_video',
                                  'link_to_folder'])
def test_infer_never_writes_over_an_input(tmp_path, capsys, monkeypatch, case):
    images = tmp_path / 'images'
    images.mkdir()
    first = _png(images / 'a.png')
    _png(images / 'b.png', 1)
    video = tmp_path / 'clip.mp4'
    video.write_bytes(b'not decoded: refused before')
    if case == 'link_to_folder':
        os.symlink(images, tmp_path / 'link')
    source, out = {'same_folder': (images, images),
                   'same_image': (images / 'a.png', images / 'a.png'),
                   'same_video': (video, video),
                   'link_to_folder': (images, tmp_path / 'link')}[case]
    line = _fails(capsys, monkeypatch, 'infer', [TOY, 'unused.pth', str(source), '--out',
                                                 str(out)])
    assert line.startswith(f'error: --out {out}'), line
    assert 'written over' in line
    assert np.array_equal(cv2.imread(str(images / 'a.png')), first)
    assert video.read_bytes() == b'not decoded: refused before'


def test_infer_reads_and_names_a_file_name_that_is_not_utf8(tmp_path, bare_state_dict):
    folder = tmp_path / 'images'
    folder.mkdir()
    name = b'caf\xe9.png'  # Latin-1, not UTF-8
    _png(os.path.join(os.fsencode(folder), name))
    (folder / 'broken.png').write_bytes(b'\x89PNG\r\n')
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1', PYTHONIOENCODING='utf-8')
    out = tmp_path / 'dets'
    run = subprocess.run([sys.executable, 'tools/infer.py', TOY, bare_state_dict,
                          str(folder), '--out', str(out), '--no-progress'],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert os.listdir(os.fsencode(out)) == [name]
    assert f'unreadable images skipped: {folder / "broken.png"}' in run.stdout


def test_a_bare_state_dict_gets_the_class_names_of_the_config(bare_state_dict):
    from sn2_det.apis.inference import load_detector
    model = load_detector(TOY, bare_state_dict)
    assert tuple(model.dataset_meta['classes']) == tuple(CLASSES)
    assert 'person' not in model.dataset_meta['classes']
