"""Exported models against PyTorch: backbone outputs (any runtime) and whole-detector
detections (the matching rule: boxes 1e-3 relative, scores 1e-4, or the same mmAP
to 0.1 point where NMS ties differ), with mmdet's own prediction as the reference.

Backbones run on standard-normal noise (what an image looks like after mean/std
normalisation); :func:`output_differences` gives per output the max absolute
difference and the max relative to the output's largest magnitude.
"""
import contextlib
import io
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmdet.structures import DetDataSample
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from . import runners
from ..utils.errors import DataError, ExportMismatchError

ATOL = 1e-4
RTOL = 1e-3  # ncnn: max difference relative to the output's largest magnitude
BOX_RTOL = 1e-3
SCORE_ATOL = ATOL
MAP_ATOL = 1e-3  # 0.1 point of mmAP
Detections = Tuple[np.ndarray, np.ndarray, np.ndarray]  # boxes, scores, labels


def _as_tuple(outputs) -> tuple:
    return tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)


def backbone_input(shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """Standard-normal float32 noise of ``shape`` (N, C, H, W)."""
    return np.random.default_rng(seed).standard_normal(list(shape)).astype(np.float32)


def torch_outputs(model: nn.Module, x: np.ndarray) -> List[np.ndarray]:
    """Every output of ``model`` (eval mode) for ``x``, as numpy arrays."""
    with torch.no_grad():
        return [t.numpy() for t in _as_tuple(model.eval()(torch.from_numpy(x)))]


def output_differences(path: str, names: Sequence[str], expected: Sequence[np.ndarray],
                       got: Sequence[np.ndarray]) -> Dict[str, Dict[str, float]]:
    """Per output name: ``abs``, the max absolute difference, and ``rel``, that over
    the largest magnitude of the expected output. Raises ExportMismatchError when the
    outputs differ in number or shape."""
    if len(got) != len(expected):
        raise ExportMismatchError(f'{path} has {len(got)} outputs {list(names)}, the '
                                  f'PyTorch model {len(expected)}')
    diffs = {}
    for name, g, e in zip(names, got, expected):
        g = np.asarray(g)
        if g.shape != e.shape:
            raise ExportMismatchError(f'{path} output {name} has shape {g.shape}, '
                                      f'PyTorch {e.shape}')
        if not g.size:
            diffs[name] = dict(abs=0.0, rel=0.0)
            continue
        diff = float(np.max(np.abs(g.astype(np.float64) - e)))
        scale = float(np.max(np.abs(e)))
        diffs[name] = dict(abs=diff, rel=diff / scale if scale > 0 else diff)
    return diffs


def worst_output(diffs: Dict[str, Dict[str, float]], key: str) -> Tuple[str, float]:
    """The output with the largest ``key`` difference (a NaN counts as largest)."""
    name = max(diffs, key=lambda n: (np.isnan(diffs[n][key]), diffs[n][key]))
    return name, diffs[name][key]


def check_onnx(model: nn.Module, onnx_path: str, atol: float = ATOL, seed: int = 0) -> float:
    """Max absolute difference between ``model`` and ``onnx_path`` run by onnxruntime.

    The input is standard-normal noise (``seed``) of the ONNX model's input shape.
    Raises ExportMismatchError when the outputs differ in number or shape, or when the
    difference exceeds ``atol`` (or is not finite).
    """
    loaded = runners.load(onnx_path, 'onnxruntime')
    if len(loaded.inputs) != 1:
        raise DataError(f'{onnx_path} has {len(loaded.inputs)} inputs; a backbone has one')
    shape = loaded.inputs[0][1]
    if not all(isinstance(d, int) for d in shape):
        raise DataError(f'{onnx_path} has dynamic input dims {shape}; export it with '
                        f'a fixed size')
    x = backbone_input(shape, seed)
    diffs = output_differences(onnx_path, loaded.output_names, torch_outputs(model, x),
                               loaded.run({loaded.inputs[0][0]: x}))
    worst_name, worst = worst_output(diffs, 'abs')
    if not worst <= atol:
        raise ExportMismatchError(f'{onnx_path} differs from the PyTorch model: max abs '
                                  f'difference {worst:.3g} (output {worst_name}) exceeds '
                                  f'{atol:g}')
    return worst


def mmdet_detections(detector: nn.Module, image: np.ndarray) -> Detections:
    """mmdet's own prediction (data preprocessor, ``predict(rescale=False)``) for one
    (3, H, W) image of raw pixels: boxes, scores, labels as numpy arrays."""
    h, w = image.shape[-2:]
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                         scale_factor=(1.0, 1.0)))
    with torch.no_grad():
        data = detector.data_preprocessor(
            dict(inputs=[torch.from_numpy(np.ascontiguousarray(image))],
                 data_samples=[sample]), False)
        pred = detector.eval().predict(data['inputs'], data['data_samples'],
                                       rescale=False)[0].pred_instances
    return pred.bboxes.numpy(), pred.scores.numpy(), pred.labels.numpy()


def match_detections(expected: Detections, got: Detections) -> Dict[str, float]:
    """Pair each expected detection with the unused one of ``got`` of the same label
    closest to it (box and score), order aside: detections of equal score may come in
    either order. Returns the counts, the largest box difference relative to the
    coordinate (``|a - b| / max(|a|, 1)``) and score difference of the pairs, and
    how many expected detections found no partner of their label."""
    boxes, scores, labels = (np.asarray(a) for a in expected)
    got_boxes, got_scores, got_labels = (np.asarray(a) for a in got)
    free = np.ones(len(got_labels), bool)
    box_rel = score_diff = 0.0
    unmatched = 0
    for box, score, label in zip(boxes, scores, labels):
        candidates = np.flatnonzero(free & (got_labels == label))
        if candidates.size == 0:
            unmatched += 1
            continue
        rel = (np.abs(got_boxes[candidates] - box) / np.maximum(np.abs(box), 1)).max(1)
        diff = np.abs(got_scores[candidates] - score)
        best = np.argmin(np.maximum(rel / BOX_RTOL, diff / SCORE_ATOL))
        free[candidates[best]] = False
        box_rel, score_diff = max(box_rel, rel[best]), max(score_diff, diff[best])
    return dict(expected=len(labels), got=len(got_labels), box_rel=float(box_rel),
                score_diff=float(score_diff), unmatched=unmatched)


def detections_match(result: Dict[str, float], box_rtol: float = BOX_RTOL,
                     score_atol: float = SCORE_ATOL) -> bool:
    """The matching rule: the same number of detections, each with a partner of
    its label, boxes within ``box_rtol`` relative and scores within ``score_atol``."""
    return (result['expected'] == result['got'] and result['unmatched'] == 0
            and result['box_rel'] <= box_rtol and result['score_diff'] <= score_atol)


def detection_map(truths: Sequence[Tuple[np.ndarray, np.ndarray]],
                  detections: Sequence[Detections], num_classes: int) -> float:
    """COCO bbox mmAP (AP at IoU .50:.95, pycocotools) of ``detections`` (boxes,
    scores, labels per image) against ``truths`` (boxes x1, y1, x2, y2 and 0-based
    labels per image); 0.0 without detections."""
    annotations, results = [], []
    for image_id, ((boxes, labels), (det_boxes, scores, det_labels)) in enumerate(
            zip(truths, detections), 1):
        for (x1, y1, x2, y2), label in zip(np.asarray(boxes, float), labels):
            annotations.append(dict(id=len(annotations) + 1, image_id=image_id,
                                    category_id=int(label) + 1, iscrowd=0,
                                    bbox=[x1, y1, x2 - x1, y2 - y1],
                                    area=(x2 - x1) * (y2 - y1)))
        for (x1, y1, x2, y2), score, label in zip(np.asarray(det_boxes, float), scores,
                                                  det_labels):
            results.append(dict(image_id=image_id, category_id=int(label) + 1,
                                bbox=[x1, y1, x2 - x1, y2 - y1], score=float(score)))
    if not results:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = dict(images=[dict(id=i) for i in range(1, len(truths) + 1)],
                             annotations=annotations,
                             categories=[dict(id=c + 1) for c in range(num_classes)])
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(results), 'bbox')
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return max(float(evaluation.stats[0]), 0.0)


def compare_detectors(expected: Sequence[Detections], got: Sequence[Detections],
                      truths: Sequence[Tuple[np.ndarray, np.ndarray]], num_classes: int,
                      box_rtol: float = BOX_RTOL, score_atol: float = SCORE_ATOL,
                      map_atol: float = MAP_ATOL) -> Dict[str, float]:
    """The matching rule over a set of images: every image's detections match
    (:func:`detections_match`), or, where they do not (NMS ties: equal scores, or an
    IoU at the threshold that rounding puts on either side), the COCO mmAP of both
    against ``truths`` agrees within ``map_atol``. Returns the figures (largest
    differences over the matching images, mmAPs, how many images differ); raises
    :class:`ExportMismatchError` when neither holds."""
    results = [match_detections(e, g) for e, g in zip(expected, got)]
    same = [r for r in results if detections_match(r, box_rtol, score_atol)]
    summary = dict(images=len(results), differing=len(results) - len(same),
                   detections=sum(r['expected'] for r in results),
                   box_rel=max((r['box_rel'] for r in same), default=0.0),
                   score_diff=max((r['score_diff'] for r in same), default=0.0),
                   map_expected=detection_map(truths, expected, num_classes),
                   map_got=detection_map(truths, got, num_classes))
    if summary['differing'] and not abs(summary['map_expected'] - summary['map_got']) \
            <= map_atol:
        worst = max(results, key=lambda r: (r['unmatched'], r['box_rel']))
        raise ExportMismatchError(
            f'detections differ on {summary["differing"]} of {len(results)} images '
            f'(worst: {worst["got"]} detections for {worst["expected"]}, '
            f'{worst["unmatched"]} without a partner, box difference '
            f'{worst["box_rel"]:.3g} relative, score difference '
            f'{worst["score_diff"]:.3g}) and the mmAP differs: '
            f'{summary["map_got"]:.4f} for {summary["map_expected"]:.4f} (limit '
            f'{map_atol:g})')
    return summary


def check_detector(detector: nn.Module, path: str,
                   pictures: Sequence[Tuple[np.ndarray, np.ndarray, np.ndarray]],
                   runtime: str = 'onnxruntime', **tolerances) -> Dict[str, float]:
    """:func:`compare_detectors` of mmdet and the exported file (``runtime``: the
    ONNX detector on onnxruntime, or the ncnn detector) on ``pictures``: (image
    (3, H, W), truth boxes, truth labels) each."""
    model = runners.load(path, runtime)
    expected = [mmdet_detections(detector, image) for image, _, _ in pictures]
    got = [runners.run_detector(model, image) for image, _, _ in pictures]
    return compare_detectors(expected, got, [(b, l) for _, b, l in pictures],
                             detector.roi_head.bbox_head.num_classes, **tolerances)
