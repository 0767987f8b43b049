"""The whole Light-Head R-CNN on ncnn: the dense part (preprocessing,
backbone, thin map, RPN convolutions) in ncnn, proposals, NMS, PS-RoI Align and the
R-CNN subnet in numpy (tools/arm_benchmark.py); each numpy piece against an
independent reference, and the detections against mmdet's on pictures and on the
bundled toy dataset's 100 held-out images (the toy detector trained for the test run)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip('ncnn', reason='ncnn is an optional extra: pip install '
                                   '-r requirements/deploy.txt')
pytest.importorskip('pnnx', reason='pnnx is an optional extra: pip install '
                                   '-r requirements/deploy.txt')

from test_onnx_detector import (SHAPE, TOY, _greedy_nms, _spread_detector,  # noqa: E402
                                _toy_detector)
from test_onnx_export import _load_tool, run_benchmark_without_torch  # noqa: E402

from sn2_det.deploy import (compare_detectors, detector_from_config,  # noqa: E402
                            mmdet_detections, runners, toy_pictures)
from sn2_det.deploy import arm_benchmark as board  # noqa: E402
from sn2_det.deploy.ncnn_export import export_detector_ncnn  # noqa: E402
from sn2_det.deploy.pictures import toy_split  # noqa: E402
from sn2_det.ops import ps_roi_align  # noqa: E402

def test_numpy_nms_is_greedy_nms():
    rng = np.random.default_rng(0)
    corner = rng.uniform(0, 50, (60, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(5, 30, (60, 2))], 1)
    boxes = boxes.astype(np.float32)
    scores = rng.permutation(60) / 60.0
    for max_output in (3, 1000):
        order = np.argsort(-scores, kind='stable')
        got = board.nms(boxes, order, 0.4, max_output).tolist()
        assert got == _greedy_nms(boxes, scores, 0.4, -1, max_output)
    assert board.nms(boxes, [], 0.5, 10).tolist() == []


@pytest.mark.parametrize('sampling_ratio', [2, -1])
def test_numpy_ps_roi_align_is_the_op(sampling_ratio):
    rng = np.random.default_rng(1)
    feature = rng.standard_normal((3 * 7 * 7, 12, 15)).astype(np.float32)
    corner = rng.uniform(-20, 200, (9, 2))
    rois = np.concatenate([corner, corner + rng.uniform(0, 120, (9, 2))], 1)
    rois = rois.astype(np.float32)
    rois[0] = [30, 30, 30, 30]  # zero size
    got = board.ps_roi_align(feature, rois, 3, 7, 1 / 16, sampling_ratio)
    expected = ps_roi_align(torch.from_numpy(feature)[None],
                            torch.from_numpy(np.concatenate([np.zeros((9, 1), np.float32),
                                                             rois], 1)),
                            7, 1 / 16, sampling_ratio, impl='torch').numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope='module')
def spread(tmp_path_factory):
    """The spread toy detector (test_onnx_detector) with score_thr 0.3, for ncnn at
    128x160."""
    detector = _spread_detector(**{'model.test_cfg.rcnn.score_thr': 0.3})
    path = str(tmp_path_factory.mktemp('ncnn') / 'toy.ncnn.param')
    return detector, export_detector_ncnn(detector, path, SHAPE)


def test_files_and_dense_outputs(spread):
    _, path = spread
    assert Path(path[:-len('.param')] + '.bin').is_file()
    post = np.load(path[:-len('.param')] + '.post.npz')
    assert post['anchors'].shape[1] == 4 and int(post['num_classes']) == 3
    model = runners.load(path)
    assert isinstance(model, board.NcnnDetector)
    assert model.inputs == [('image', [1, 3, 128, 160], 'tensor(float)')]
    assert sorted(model.dense_names) == ['rpn_cls', 'rpn_reg', 'thin']
    assert model.output_names == ['boxes', 'scores', 'labels']


def test_detections_match_mmdet_on_pictures(spread):
    detector, path = spread
    pictures = toy_pictures(SHAPE, 6, seed=1)
    expected = [mmdet_detections(detector, image) for image, _, _ in pictures]
    model = runners.load(path)
    got = [runners.run_detector(model, image) for image, _, _ in pictures]
    counts = [len(scores) for _, scores, _ in expected]
    assert len(set(counts)) > 1 and min(counts) > 0, counts
    result = compare_detectors(expected, got, [(b, l) for _, b, l in pictures], 3)
    assert result['differing'] == 0, result
    assert result['box_rel'] <= 1e-3 and result['score_diff'] <= 1e-4
    for boxes, scores, labels in got:
        assert boxes.dtype == np.float32 and labels.dtype == np.int64
        assert np.all(np.diff(scores) <= 0)  # best first


def test_no_proposals_gives_empty_outputs(tmp_path):
    detector = _toy_detector(**{'model.test_cfg.rpn.min_bbox_size': 1000})
    path = export_detector_ncnn(detector, str(tmp_path / 'empty.ncnn.param'), SHAPE)
    boxes, scores, labels = runners.run_detector(runners.load(path),
                                                 toy_pictures(SHAPE, 1, seed=5)[0][0])
    assert boxes.shape == (0, 4) and scores.shape == (0,) and labels.shape == (0,)


def test_refuses_what_the_numpy_port_lacks(tmp_path):
    out = str(tmp_path / 'x.ncnn.param')
    detector = _toy_detector(**{'model.roi_head.bbox_roi_extractor.mode': 'pool'})
    with pytest.raises(ValueError, match=r"roi_head.bbox_roi_extractor.mode 'pool' is not "
                                         r"supported by the ncnn detector; supported: "
                                         r"'align'"):
        export_detector_ncnn(detector, out, SHAPE)
    with pytest.raises(ValueError, match=r"test_cfg.rcnn.nms.type must be 'nms'"):
        export_detector_ncnn(_toy_detector(**{'model.test_cfg.rcnn.nms.type': 'soft_nms'}),
                             out, SHAPE)
    assert not Path(out).exists()


def test_cli_exports_and_checks(tmp_path, capsys):
    detector = _spread_detector()
    checkpoint = str(tmp_path / 'spread.pth')
    torch.save(dict(state_dict=detector.state_dict()), checkpoint)
    out = str(tmp_path / 'det.ncnn.param')
    _load_tool('export_ncnn').main(['--detector', TOY, '--checkpoint', checkpoint,
                                    '--shape', '128', '160', '--out', out,
                                    '--check-images', '2'])
    printed = capsys.readouterr().out
    assert f'wrote {out} (+ .bin, .post.npz): input image 1x3x128x160' in printed
    assert 'check on 2 toy-shapes pictures, 200 detections (mmdet)' in printed
    assert '2 match: max box difference' in printed


def test_arm_benchmark_times_the_ncnn_detector_without_torch(tmp_path, spread):
    _, path = spread
    out = tmp_path / 'result.json'
    proc = run_benchmark_without_torch(
        [path, '--runs', '3', '--warmup', '1', '--json', str(out)], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert result['runtime'] == 'ncnn' and result['feed'] == 'auto'
    assert result['inputs'] == {'image': [1, 3, 128, 160]}
    count = result['outputs']['scores'][0]
    assert result['outputs'] == {'boxes': [count, 4], 'scores': [count],
                                 'labels': [count]}


# slow: make test runs the same check on six pictures
# (test_detections_match_mmdet_on_pictures)
@pytest.mark.slow
def test_detector_matches_pytorch_on_the_bundled_held_out_images(tmp_path,
                                                                  trained_toy_detector):
    root, checkpoint = trained_toy_detector
    detector = detector_from_config(TOY, checkpoint)
    path = export_detector_ncnn(detector, str(tmp_path / 'toy.ncnn.param'), (256, 256))
    pictures = toy_split(str(root), 'val')
    assert len(pictures) == 100
    model = runners.load(path)
    expected = [mmdet_detections(detector, image) for image, _, _ in pictures]
    got = [runners.run_detector(model, image) for image, _, _ in pictures]
    result = compare_detectors(expected, got, [(b, l) for _, b, l in pictures], 3)
    print('bundled held-out images, ncnn + numpy against mmdet:', result)
    assert result['detections'] > 1000 and result['map_expected'] > 0.01, result
    assert result['differing'] <= 5, result
    assert result['box_rel'] <= 1e-3 and result['score_diff'] <= 1e-4
