"""Two ops alone, their implementations timed interleaved (docs/performance.md).

PS-RoI Align: the input is a Light-Head R-CNN's thin map (10 x 7 x 7 = 490 channels at stride 32 of
the padded image) and ``rois_per_image`` random boxes an image, 16 to 512 pixels a
side, inside the image (what 1000 test proposals look like). Rows: torchvision's
kernel where it imports (first, so the ratios read against it), our fused PyTorch
path ('torch') and its ``index_select`` form ('gather', the ONNX export's).

Class-wise NMS of the R-CNN (1000 RoIs x 80 classes, score threshold 0.001, IoU 0.5,
100 kept) and the RPN's NMS (6000 candidates, IoU 0.7, 1000 kept): mmdet's
``multiclass_nms`` / mmcv's ``batched_nms`` cut to the kept count (first) against
:mod:`sn2_det.ops.nms`, on score patterns that favour one or the other:
'tied' (every score equal: the benchmark's zeroed predictors; the whole work for
mmdet, the least for the prefix), 'random' (independent random scores) and
'clustered' (proposals jittered around a few objects, each scored high for its own
class: what a trained detector gives, where the prefix must grow).
"""
import math
from typing import Dict, List, Sequence

import torch

from mmcv.ops import batched_nms
from mmdet.models.layers import multiclass_nms

from ..ops.nms import topk_batched_nms, topk_multiclass_nms
from ..ops.ps_roi_align import _torchvision, ps_roi_align
from .benchmark import summarise, time_interleaved
from ..utils.errors import ConfigError

CHANNELS, BINS, STRIDE, SAMPLING = 10, 7, 32, 2


def random_rois(batch: int, shape: Sequence[int], per_image: int,
                generator: torch.Generator) -> torch.Tensor:
    """(batch * per_image, 5) boxes (image index, x1, y1, x2, y2) inside ``shape``."""
    h, w = shape
    side = torch.empty(batch * per_image, 2).uniform_(16, 512, generator=generator)
    side = torch.minimum(side, torch.tensor([float(w), float(h)]))
    corner = torch.rand(batch * per_image, 2, generator=generator) * (
        torch.tensor([float(w), float(h)]) - side)
    index = torch.arange(batch).repeat_interleave(per_image).float()[:, None]
    return torch.cat([index, corner, corner + side], 1)


def compare_ps_roi_align(batch: int = 4, shape: Sequence[int] = (800, 1200),
                         rois_per_image: int = 1000, device: str = 'cpu',
                         rounds: int = 10, warmup: int = 2) -> List[Dict]:
    """One row per implementation: img/s (batches of ``batch`` images), median ms,
    spread, ``ratio_to_first``, and the largest absolute difference from the first."""
    g = torch.Generator().manual_seed(0)
    h, w = (math.ceil(s / STRIDE) for s in shape)
    feat = torch.randn(batch, CHANNELS * BINS * BINS, h, w, generator=g).to(device)
    rois = random_rois(batch, shape, rois_per_image, g).to(device)
    impls = (['torchvision'] if _torchvision() is not None else []) + ['torch', 'gather']

    def runner(impl):
        def run():
            with torch.no_grad():
                return ps_roi_align(feat, rois, BINS, 1 / STRIDE, SAMPLING, impl=impl)
        return run

    runs = [runner(impl) for impl in impls]
    outputs = [run() for run in runs]
    times = time_interleaved(runs, rounds, warmup, device)
    rows = [dict(summarise(t, batch), impl=impl, rois=batch * rois_per_image,
                 max_abs_diff=float((out - outputs[0]).abs().max()), device=device)
            for impl, t, out in zip(impls, times, outputs)]
    for row in rows:
        row['ratio_to_first'] = row['img_per_s'] / rows[0]['img_per_s']
    return rows


NMS_PATTERNS = ('tied', 'random', 'clustered')


def nms_inputs(pattern: str, rois: int, classes: int, generator: torch.Generator,
               shape: Sequence[int] = (800, 1200), objects: int = 20):
    """Boxes (rois, 4) and softmax scores (rois, classes + 1), background last."""
    if pattern not in NMS_PATTERNS:
        raise ConfigError(f'pattern must be one of {NMS_PATTERNS}, got {pattern!r}')
    boxes = random_rois(1, shape, rois, generator)[:, 1:]
    logits = torch.zeros(rois, classes + 1)
    if pattern == 'random':
        logits = torch.randn(rois, classes + 1, generator=generator) * 2
    elif pattern == 'clustered':
        owner = torch.randint(objects, (rois,), generator=generator)
        centres = random_rois(1, shape, objects, generator)[:, 1:]
        boxes = centres[owner] + torch.randn(rois, 4, generator=generator) * 8
        label = torch.randint(classes, (objects,), generator=generator)[owner]
        logits = torch.randn(rois, classes + 1, generator=generator)
        logits[torch.arange(rois), label] += 6
    return boxes, logits.softmax(-1)


def compare_nms(pattern: str = 'clustered', rounds: int = 10, warmup: int = 2,
                rois: int = 1000, classes: int = 80, rpn_candidates: int = 6000) -> List[Dict]:
    """Rows for the R-CNN's class-wise NMS and the RPN's NMS on ``pattern``: mmdet's
    first, ours second, with ``ratio_to_first`` and whether the outputs are equal."""
    g = torch.Generator().manual_seed(0)
    boxes, scores = nms_inputs(pattern, rois, classes, g)
    rcnn = dict(type='nms', iou_threshold=0.5)
    rpn_boxes, rpn_scores = nms_inputs(pattern, rpn_candidates, 1, g)
    rpn_scores, rpn_ids = rpn_scores[:, 0], torch.zeros(rpn_candidates, dtype=torch.long)
    rpn = dict(type='nms', iou_threshold=0.7)
    keep = min(1000, rpn_candidates // 2)
    cases = {
        'R-CNN class-wise NMS': (
            lambda: multiclass_nms(boxes, scores, 0.001, rcnn, 100),
            lambda: topk_multiclass_nms(boxes, scores, 0.001, rcnn, 100)),
        'RPN NMS': (
            lambda: tuple(t[:keep] for t in batched_nms(rpn_boxes, rpn_scores, rpn_ids, rpn)),
            lambda: topk_batched_nms(rpn_boxes, rpn_scores, rpn_ids, rpn, keep)),
    }
    rows = []
    for stage, runs in cases.items():
        outputs = [run() for run in runs]
        times = time_interleaved(runs, rounds, warmup)
        same = all(torch.equal(a, b) for a, b in zip(*outputs))
        for impl, t in zip(('mmdet', 'sn2_det top-k'), times):
            rows.append(dict(summarise(t, 1), stage=stage, impl=impl, pattern=pattern,
                             kept=len(outputs[0][0]), same_output=same))
        rows[-1]['ratio_to_first'] = rows[-2]['median_ms'] / rows[-1]['median_ms']
        rows[-2]['ratio_to_first'] = 1.0
    return rows
