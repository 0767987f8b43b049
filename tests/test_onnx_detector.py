"""The whole Light-Head R-CNN detector in ONNX: NMS in the graph, data-dependent
sizes, detections against mmdet's (boxes 1e-3 relative, scores 1e-4, or the mmAP to
0.1 point where NMS ties differ), tools/export_onnx.py --detector and
tools/arm_benchmark.py on the detector without torch. The slow tests compare the
briefly trained toy detector (conftest's trained_toy_detector) on the bundled
dataset's 100 validation images."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from test_onnx_export import _load_tool, run_benchmark_without_torch

from sn2_det.deploy import (ExportableDetector, NonMaxSuppression, ExportMismatchError,
                            compare_detectors, detector_from_config, export_detector,
                            mmdet_detections, run_onnx_detector, toy_pictures)

ROOT = Path(__file__).resolve().parents[1]
TOY = str(ROOT / 'configs/toy/lighthead_sn2_toy.py')
EXPORT = str(ROOT / 'tools/export_onnx.py')
SHAPE = (128, 160)
ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}


def _toy_detector(**cfg_options):
    torch.manual_seed(0)
    return detector_from_config(TOY, cfg_options=cfg_options)


def _spread_detector(**cfg_options):
    """The toy detector, seeded, its final predictors rescaled so that on a picture
    the RPN and class logits have standard deviation 2 and the box deltas 0.5: a fresh
    initialisation gives logits near 0 and scores that tie near 1/2 and 1/4."""
    detector = _toy_detector(**cfg_options)
    bbox_head = detector.roi_head.bbox_head
    targets = ((detector.rpn_head.rpn_cls, 2.0), (bbox_head.fc_cls, 2.0),
               (bbox_head.fc_reg, 0.5))
    for layer, target in targets:  # in order: each output depends on the one before
        outputs = []
        handle = layer.register_forward_hook(lambda m, i, out: outputs.append(out))
        mmdet_detections(detector, toy_pictures(SHAPE, 1, seed=9)[0][0])
        handle.remove()
        with torch.no_grad():
            layer.weight.mul_(target / float(outputs[0].std()))
    return detector


@pytest.fixture(scope='module')
def spread(tmp_path_factory):
    """The spread toy detector with score_thr 0.3 (so counts vary), exported at 128x160."""
    detector = _spread_detector(**{'model.test_cfg.rcnn.score_thr': 0.3})
    path = str(tmp_path_factory.mktemp('onnx') / 'toy_detector.onnx')
    return detector, export_detector(detector, path, SHAPE)


def _greedy_nms(boxes, scores, iou_threshold, score_threshold, max_output):
    """ONNX NonMaxSuppression for one batch and class, written out plainly."""
    order = [i for i in np.argsort(-scores, kind='stable') if scores[i] > score_threshold]
    kept = []
    for i in order:
        if len(kept) == max_output:
            break
        ok = True
        for j in kept:
            w = min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0])
            h = min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1])
            inter = max(w, 0) * max(h, 0)
            area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
            if inter / (area(boxes[i]) + area(boxes[j]) - inter) > iou_threshold:
                ok = False
                break
        if ok:
            kept.append(i)
    return kept


@pytest.mark.parametrize('max_output', [3, 1000])
def test_nms_op_is_onnx_nonmaxsuppression(tmp_path, max_output):
    rng = np.random.default_rng(0)
    corner = rng.uniform(0, 50, (2, 40, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(5, 30, (2, 40, 2))], -1)
    scores = rng.permutation(2 * 3 * 40).reshape(2, 3, 40) / 240.0  # distinct
    boxes, scores = boxes.astype(np.float32), scores.astype(np.float32)

    class Net(torch.nn.Module):
        def forward(self, b, s):
            return NonMaxSuppression.apply(b, s, max_output, 0.4, 0.25)

    path = str(tmp_path / 'nms.onnx')
    torch.onnx.export(Net(), (torch.from_numpy(boxes), torch.from_numpy(scores)), path,
                      dynamo=False, opset_version=17, input_names=['b', 's'],
                      dynamic_axes={'b': {1: 'n'}, 's': {2: 'n'}})
    assert [n.op_type for n in onnx.load(path).graph.node] == ['Constant'] * 3 + \
        ['NonMaxSuppression']
    expected = [[b, c, i] for b in range(2) for c in range(3)
                for i in _greedy_nms(boxes[b], scores[b, c], 0.4, 0.25, max_output)]
    torch_rows = Net()(torch.from_numpy(boxes), torch.from_numpy(scores)).tolist()
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    assert torch_rows == expected
    assert session.run(None, {'b': boxes, 's': scores})[0].tolist() == expected
    # another box count runs through the same file
    rows = session.run(None, {'b': boxes[:, :7], 's': scores[:, :, :7]})[0].tolist()
    assert rows == [[b, c, i] for b in range(2) for c in range(3) for i in
                    _greedy_nms(boxes[b, :7], scores[b, c, :7], 0.4, 0.25, max_output)]


def test_graph_holds_the_whole_detector(spread):
    _, path = spread
    model = onnx.load(path)
    onnx.checker.check_model(model)
    ops = [node.op_type for node in model.graph.node]
    assert ops.count('NonMaxSuppression') == 2  # RPN and R-CNN
    assert 'TopK' in ops and 'Conv' in ops and 'Softmax' in ops
    def dims(value):
        return [d.dim_value or d.dim_param for d in value.type.tensor_type.shape.dim]
    assert {v.name: dims(v) for v in model.graph.input} == {'image': [1, 3, 128, 160]}
    assert {v.name: dims(v) for v in model.graph.output} == {
        'boxes': ['detections', 4], 'scores': ['detections'], 'labels': ['detections']}


def test_detections_match_mmdet_on_pictures_not_traced(spread):
    """The export traced one picture; others have other proposal and detection counts."""
    detector, path = spread
    pictures = toy_pictures(SHAPE, 6, seed=1)
    expected = [mmdet_detections(detector, image) for image, _, _ in pictures]
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    got = [run_onnx_detector(path, image, session) for image, _, _ in pictures]
    counts = [len(scores) for _, scores, _ in expected]
    assert len(set(counts)) > 1 and min(counts) > 0, counts
    result = compare_detectors(expected, got, [(b, l) for _, b, l in pictures], 3)
    assert result['differing'] == 0, result
    assert result['box_rel'] <= 1e-3 and result['score_diff'] <= 1e-4
    # the wrapper's PyTorch forward is mmdet's prediction too
    wrapper = ExportableDetector(detector, SHAPE)
    with torch.no_grad():
        eager = [tuple(t.numpy() for t in wrapper(torch.from_numpy(image)[None]))
                 for image, _, _ in pictures]
    for e, mine in zip(expected, eager):
        for a, b in zip(e, mine):
            np.testing.assert_array_equal(a, b)


def test_no_proposals_gives_empty_outputs(tmp_path):
    detector = _toy_detector(**{'model.test_cfg.rpn.min_bbox_size': 1000})
    path = export_detector(detector, str(tmp_path / 'empty.onnx'), SHAPE)
    image = toy_pictures(SHAPE, 1, seed=5)[0][0]
    boxes, scores, labels = run_onnx_detector(path, image)
    assert boxes.shape == (0, 4) and scores.shape == (0,) and labels.shape == (0,)
    assert labels.dtype == np.int64
    assert all(len(a) == 0 for a in mmdet_detections(detector, image))


def test_export_rejects_what_it_does_not_implement(tmp_path):
    out = str(tmp_path / 'x.onnx')
    with pytest.raises(ValueError, match='handles LightHeadRCNN, got Linear'):
        ExportableDetector(torch.nn.Linear(2, 2), SHAPE)
    detector = _toy_detector()
    for shape in [(128,), (128, 0), (128.0, 160)]:
        with pytest.raises(ValueError, match=r'shape must be two positive ints \(H, W\)'):
            export_detector(detector, out, shape)
    with pytest.raises(ValueError, match=r"test_cfg.rcnn.nms.type must be 'nms' for the "
                                         r"ONNX export, got 'soft_nms'"):
        ExportableDetector(_toy_detector(**{'model.test_cfg.rcnn.nms.type': 'soft_nms'}),
                           SHAPE)
    with pytest.raises(ValueError, match=r"test_cfg.rcnn has \['mask_thr_binary'\], which "
                                         r"the ONNX export does not implement; supported "
                                         r"keys: \['score_thr', 'nms', 'max_per_img'\]"):
        ExportableDetector(_toy_detector(**{'model.test_cfg.rcnn.mask_thr_binary': 0.5}),
                           SHAPE)
    with pytest.raises(ValueError, match='test_cfg.rcnn.max_per_img must be a positive int'):
        ExportableDetector(_toy_detector(**{'model.test_cfg.rcnn.max_per_img': -1}),
                           SHAPE)
    with pytest.raises(FileNotFoundError, match='checkpoint file not found: no/such.pth'):
        detector_from_config(TOY, 'no/such.pth')
    assert not os.path.exists(out)


def _detections(*rows):
    rows = np.array(rows, np.float32).reshape(-1, 6)
    return rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64)


def test_compare_detectors_is_the_matching_rule():
    truths = [(np.array([[10, 10, 50, 50]], np.float32), np.array([0])),
              (np.array([[20, 20, 60, 60]], np.float32), np.array([1]))]
    expected = [_detections([10, 10, 50, 50, 0.9, 0], [0, 0, 5, 5, 0.1, 2]),
                _detections([20, 20, 60, 60, 0.8, 1])]
    # within tolerance, in another order
    got = [_detections([0, 0, 5, 5, 0.10005, 2], [10.005, 10, 50, 50, 0.9, 0]),
           _detections([20, 20, 60, 60, 0.8, 1])]
    result = compare_detectors(expected, got, truths, 3)
    assert result['differing'] == 0 and result['detections'] == 3
    assert result['box_rel'] == pytest.approx(5e-4, rel=1e-3)
    assert result['score_diff'] == pytest.approx(5e-5, rel=1e-2)
    # a false detection elsewhere (an NMS tie resolved the other way): same mmAP
    got[0] = _detections([10, 10, 50, 50, 0.9, 0], [90, 90, 95, 95, 0.1, 2])
    result = compare_detectors(expected, got, truths, 3)
    assert result['differing'] == 1
    assert result['map_got'] == result['map_expected'] == pytest.approx(1.0)
    # a moved true positive: another mmAP
    got[1] = _detections([30, 30, 70, 70, 0.8, 1])
    with pytest.raises(ExportMismatchError, match=r'differ on 2 of 2 images .* mmAP differs'):
        compare_detectors(expected, got, truths, 3)
    with pytest.raises(ExportMismatchError, match='mmAP differs'):
        compare_detectors(expected, [got[0], _detections()], truths, 3)


def test_cli_exports_and_checks_a_detector(tmp_path, capsys):
    detector = _spread_detector()
    checkpoint = str(tmp_path / 'spread.pth')
    torch.save(dict(state_dict=detector.state_dict()), checkpoint)
    out = str(tmp_path / 'det.onnx')
    _load_tool('export_onnx').main(['--detector', TOY, '--checkpoint', checkpoint,
                                    '--shape', '128', '160', '--out', out,
                                    '--check-images', '3'])
    printed = capsys.readouterr().out
    assert f'wrote {out}: input image 1x3x128x160 (raw pixels)' in printed
    assert 'check on 3 toy-shapes pictures, 300 detections (mmdet)' in printed
    assert '3 match: max box difference' in printed and 'NMS ties' not in printed
    assert 'no --checkpoint' not in printed
    session = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    assert [o.name for o in session.get_outputs()] == ['boxes', 'scores', 'labels']


@pytest.mark.parametrize('argv, message', [
    (['--detector', TOY, '--backbone', 'shufflenet_v2'], '--detector CONFIG alone'),
    ([TOY, '--detector', TOY], '--detector CONFIG alone'),
    (['--backbone', 'shufflenet_v2', '--checkpoint', 'a.pth'],
     '--checkpoint goes with --detector'),
    (['--detector', TOY, '--batch', '2'], '--batch must be 1 with --detector'),
    (['--detector', TOY, '--check-images', '0'], '--check-images must be a positive int'),
    (['--detector', TOY, '--checkpoint', 'no/such.pth'],
     'checkpoint file not found: no/such.pth'),
    (['--detector', 'no/such.py'], 'config file not found: no/such.py'),
    (['--detector', TOY, '--shape', '0', '64'], 'shape must be two positive ints'),
])
def test_cli_rejects_bad_detector_input(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        _load_tool('export_onnx').main([*argv, '--out', 'x.onnx'])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'x.onnx').exists()


def test_arm_benchmark_times_the_detector_without_torch(tmp_path, spread):
    _, path = spread
    out = tmp_path / 'result.json'
    proc = run_benchmark_without_torch(
        [path, '--runs', '3', '--warmup', '1', '--json', str(out)], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'latency ms: median' in proc.stdout and 'outputs of the last run' in proc.stdout
    result = json.loads(out.read_text())
    assert result['inputs'] == {'image': [1, 3, 128, 160]} and result['feed'] == 'auto'
    count = result['outputs']['scores'][0]
    assert result['outputs'] == {'boxes': [count, 4], 'scores': [count],
                                 'labels': [count]}
    assert len(result['latencies_ms']) == 3 and result['batch'] == 1


def test_arm_benchmark_feeds_the_detector_a_picture(spread):
    _, path = spread
    bench = _load_tool('arm_benchmark')
    session = bench.make_session(path)
    image = bench.make_inputs(session)['image']
    assert image.shape == (1, 3, 128, 160) and image.dtype == np.float32
    assert 0 <= image.min() and image.max() <= 255 and image.std() > 20
    noise = bench.make_inputs(session, feed='noise')['image']
    assert abs(noise.mean()) < 0.1 and noise.min() < 0
    with pytest.raises(ValueError, match=r"feed must be one of \('auto', 'noise', "
                                         r"'picture'\), got 'photo'"):
        bench.make_inputs(session, feed='photo')


def test_arm_benchmark_picture_needs_an_image_shaped_input(tmp_path):
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 8])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 8])
    graph = helper.make_graph([helper.make_node('Relu', ['x'], ['y'])], 'relu', [x], [y])
    path = str(tmp_path / 'flat.onnx')
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)],
                                ir_version=8), path)
    bench = _load_tool('arm_benchmark')
    session = bench.make_session(path)
    assert bench.make_inputs(session)['x'].shape == (1, 8)  # auto: noise
    with pytest.raises(ValueError, match=r'needs \(N, 3, H, W\): pass --feed noise'):
        bench.make_inputs(session, feed='picture')


# --- slow: a briefly trained toy detector on the bundled dataset --------------------

@pytest.mark.slow
def test_detector_matches_pytorch_on_the_bundled_dataset(tmp_path, trained_toy_detector):
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate
    from sn2_det.utils.config import read_config
    root, checkpoint = trained_toy_detector
    detector = detector_from_config(TOY, checkpoint)
    path = export_detector(detector, str(tmp_path / 'toy.onnx'), (256, 256))
    cfg = read_config(TOY).test_dataloader.dataset
    cfg.data_root = str(root) + '/'
    dataset = DATASETS.build(cfg)
    assert len(dataset) == 100
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    expected, got, truths = [], [], []
    for item in dataset:
        assert item['data_samples'].scale_factor == (1.0, 1.0)  # boxes need no rescale
        with torch.no_grad():
            pred = detector.test_step(pseudo_collate([item]))[0].pred_instances
        expected.append((pred.bboxes.numpy(), pred.scores.numpy(), pred.labels.numpy()))
        got.append(run_onnx_detector(path, item['inputs'].numpy(), session))
        gt = item['data_samples'].gt_instances
        truths.append((gt.bboxes.numpy(), gt.labels.numpy()))
    result = compare_detectors(expected, got, truths, 3)
    print('bundled dataset, ONNX against mmdet:', result)
    assert result['detections'] > 1000 and result['map_expected'] > 0.01, result
    # ties are rare: nearly every image matches exactly
    assert result['differing'] <= 5, result
    assert result['box_rel'] <= 1e-3 and result['score_diff'] <= 1e-4


@pytest.mark.slow
def test_cli_fails_when_the_export_differs(tmp_path, trained_toy_detector):
    """A box regressor changed after the export: mmdet's boxes move, the file's do not."""
    _, checkpoint = trained_toy_detector
    out = str(tmp_path / 'bad.onnx')
    code = (
        'import runpy, sys, torch\n'
        'export = torch.onnx.export\n'
        'def export_then_perturb(model, *args, **kwargs):\n'
        '    export(model, *args, **kwargs)\n'
        '    with torch.no_grad():\n'
        '        model.detector.roi_head.bbox_head.fc_reg.bias.add_(3.0)\n'
        'torch.onnx.export = export_then_perturb\n'
        f'sys.argv = [{EXPORT!r}] + sys.argv[1:]\n'
        'runpy.run_path(sys.argv[0], run_name="__main__")\n')
    proc = subprocess.run(
        [sys.executable, '-c', code, '--detector', TOY, '--checkpoint', checkpoint,
         '--shape', '256', '256', '--check-images', '8', '--out', out], cwd=ROOT,
        capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'FAILED:' in proc.stderr and 'differ on 8 of 8 images' in proc.stderr
    assert 'mmAP differs' in proc.stderr
    assert os.path.isfile(out)
