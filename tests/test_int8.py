"""int8: onnxruntime's static quantisation of a backbone and of the whole ONNX
detector, calibrated on a folder of images (the toy dataset by default), what stayed
fp32 printed, and the toy detector's bbox mmAP in fp32 and int8 per runtime."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from test_onnx_detector import ENV
from test_onnx_export import _load_tool

from sn2_det.deploy import (backbone_from_name, export_backbone, export_detector, runners,
                            toy_pictures)
from sn2_det.deploy.quantization import feeds_from_images, fp32_nodes, quantize_onnx

pytest.importorskip('onnxruntime.quantization', reason='needs onnxruntime')
ROOT = Path(__file__).resolve().parents[1]
TOY = str(ROOT / 'configs/toy/lighthead_sn2_toy.py')


def _folder(path, shape, count):
    path.mkdir()
    for i, (image, _, _) in enumerate(toy_pictures(shape, count, seed=3)):
        cv2.imwrite(str(path / f'{i:03d}.png'), image.transpose(1, 2, 0).astype(np.uint8))
    return path


def test_backbone_int8_from_a_folder(tmp_path, capsys):
    model = backbone_from_name('shufflenet_v2', 0.5)
    fp32 = export_backbone(model, str(tmp_path / 'b.onnx'), (64, 96))
    folder = _folder(tmp_path / 'calib', (80, 120), 6)  # resized to 64x96
    out = str(tmp_path / 'b.int8.onnx')
    _load_tool('quantize_onnx').main([fp32, '--out', out, '--calibration', str(folder),
                                      '--count', '4', '--evaluate', '--runs', '2',
                                      '--warmup', '1', '--json', str(tmp_path / 'q.json')])
    printed = capsys.readouterr().out
    assert f'MinMax on 4 images of {folder}' in printed
    assert 'nodes stayed fp32' in printed
    ops = [n.op_type for n in onnx.load(out).graph.node]
    assert 'QuantizeLinear' in ops and 'DequantizeLinear' in ops
    stayed = {op for op, _ in fp32_nodes(out)}
    assert 'Conv' not in stayed  # every convolution runs in int8
    report = json.loads((tmp_path / 'q.json').read_text())
    assert report['calibration_images'] == 4
    rows = report['evaluation']
    assert rows['onnxruntime fp32']['max_rel_vs_fp32'] == 0.0
    # int8 is close to fp32, not equal
    assert 0 < rows['onnxruntime int8']['max_rel_vs_fp32'] < 0.3
    assert rows['onnxruntime fp32']['ratio'] == 1.0


def test_fp32_nodes_are_the_unquantised_ones(tmp_path):
    model = backbone_from_name('shufflenet_v2', 0.5, out_indices=(3,))
    fp32 = export_backbone(model, str(tmp_path / 'b.onnx'), (64, 64))
    images = [image for image, _, _ in toy_pictures((64, 64), 2)]
    result = quantize_onnx(fp32, str(tmp_path / 'conv_only.onnx'),
                           feeds_from_images(fp32, images), op_types=('Conv',))
    assert result['fp32_ops'].get('Conv', 0) == 0
    # the channel shuffle's reshapes are not quantised when only Conv is asked for
    assert result['fp32_ops'].get('Reshape', 0) > 0
    none = quantize_onnx(fp32, str(tmp_path / 'none.onnx'),
                         feeds_from_images(fp32, images), op_types=('Gemm',))
    assert none['fp32_ops']['Conv'] == sum(
        n.op_type == 'Conv' for n in onnx.load(fp32).graph.node)


def test_rejects_bad_input(tmp_path, capsys):
    model = backbone_from_name('shufflenet_v2', 0.5)
    fp32 = export_backbone(model, str(tmp_path / 'b.onnx'), (64, 96))
    empty = tmp_path / 'empty'
    empty.mkdir()
    for argv, message in [
            ([fp32, '--out', 'x.onnx', '--count', '0'], '--count must be a positive int'),
            ([fp32, '--out', 'x.onnx', '--calibration', 'no/such'],
             'image folder not found: no/such'),
            ([fp32, '--out', 'x.onnx', '--calibration', str(empty)], 'holds no images'),
            ([fp32, '--out', 'x.onnx', '--ncnn', 'a.param'],
             '--ncnn goes with --evaluate')]:
        with pytest.raises(SystemExit) as exit_info:
            _load_tool('quantize_onnx').main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


@pytest.mark.slow
def test_detector_int8_map_per_runtime(tmp_path, trained_toy_detector):
    """The trained toy detector in fp32 and int8 on the bundled held-out images (and
    on ncnn, fp16 off and on, where the extra is installed)."""
    from sn2_det.deploy import detector_from_config
    root, checkpoint = trained_toy_detector
    detector = detector_from_config(TOY, checkpoint)
    fp32 = export_detector(detector, str(tmp_path / 'toy.onnx'), (256, 256))
    ncnn = []
    if importlib.util.find_spec('ncnn') and importlib.util.find_spec('pnnx'):
        from sn2_det.deploy.ncnn_export import export_detector_ncnn
        ncnn = ['--ncnn', export_detector_ncnn(detector, str(tmp_path / 'toy.ncnn.param'),
                                               (256, 256))]
    else:
        print('ncnn or pnnx missing (the deploy extra): the ncnn rows are left out')
    out = str(tmp_path / 'toy.int8.onnx')
    # as a user runs it: its own process
    run = subprocess.run([sys.executable, 'tools/quantize_onnx.py', fp32, '--out', out,
                          '--data-root', str(root), '--count', '16', '--evaluate', *ncnn,
                          '--runs', '3', '--warmup', '1', '--json', str(tmp_path / 'q.json')],
                         cwd=ROOT, capture_output=True, text=True, timeout=900,
                         env={**ENV, 'PYTHONPATH': str(ROOT)})
    assert run.returncode == 0, run.stderr[-3000:]
    printed = run.stdout
    print(printed)
    assert f'{root}/train' in printed and 'bbox mmAP (toy val, 100 images)' in printed
    report = json.loads((tmp_path / 'q.json').read_text())
    stayed = set(report['fp32_ops'])
    # the post-processing stays fp32, the network does not
    assert {'NonMaxSuppression', 'TopK'} <= stayed and not {'Conv', 'Gemm'} & stayed
    rows = report['evaluation']
    assert rows['onnxruntime fp32']['mmap'] > 0.01
    # fp32 on every runtime is the same detector
    for label in ('openvino fp32', 'ncnn fp32'):
        if label in rows:
            assert abs(rows[label]['mmap'] - rows['onnxruntime fp32']['mmap']) <= 1e-3
    assert rows['onnxruntime int8']['mmap'] > 0.5 * rows['onnxruntime fp32']['mmap']
    for label, row in rows.items():
        assert f'{label}' in printed and row['median_ms'] > 0
    # the same files run through the runners
    boxes, scores, labels = runners.run_detector(runners.load(out),
                                                 toy_pictures((256, 256), 1)[0][0])
    assert len(boxes) == len(scores) == len(labels)
