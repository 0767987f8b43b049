"""Exact NMS that stops once the kept boxes a detector returns are known.

A detector keeps only the ``max_num`` best boxes after NMS (the RPN's
``max_per_img`` proposals, the R-CNN's ``max_per_img`` detections). Greedy NMS
decides each box from the higher-scored boxes alone, so NMS over the best ``m``
candidates keeps exactly the boxes that NMS over all of them keeps among those
``m``; once that prefix holds ``max_num`` kept boxes, no later candidate can enter
the result. :func:`topk_batched_nms` runs mmcv's ``batched_nms`` on growing score
prefixes (2x, then 8x, ... ``max_num``) instead of on every candidate: the same
boxes as ``batched_nms(...)[:max_num]`` at a fraction of the cost when thousands of
candidates pass the score threshold. Equal scores are the one freedom: mmcv orders
them as its sort happens to, here by index, so where a tie straddles a prefix's end
the two may keep different ones of the tied boxes.
"""
from typing import Tuple

import torch
from mmcv.ops import batched_nms

GROWTH = 4


def topk_batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor,
                     nms_cfg: dict, max_num: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """``batched_nms(boxes, scores, idxs, nms_cfg)`` cut to its first ``max_num`` rows:
    (dets (k, 5) sorted by score, indices (k,) into the inputs). ``max_num <= 0`` keeps
    all; NMS types that rescore boxes (soft-NMS) run on every candidate.

    Each prefix is suppressed with the arithmetic mmcv uses on all candidates: boxes
    shifted apart by class with the largest coordinate of *all* candidates, then one
    NMS below ``split_thr`` candidates, one NMS a class from there on.
    """
    count = scores.numel()
    if max_num <= 0 or nms_cfg.get('type', 'nms') != 'nms' or count <= 2 * max_num:
        dets, keep = batched_nms(boxes, scores, idxs, nms_cfg)
        return (dets, keep) if max_num <= 0 else (dets[:max_num], keep[:max_num])
    cfg = dict(nms_cfg)
    boxes_for_nms = boxes
    if not cfg.pop('class_agnostic', False):
        boxes_for_nms = boxes + idxs.to(boxes)[:, None] * (boxes.max() + 1)
    per_class = count >= cfg.pop('split_thr', 10000)
    cfg.update(class_agnostic=True, split_thr=0 if per_class else count + 1)
    order = scores.argsort(descending=True, stable=True)
    size = 2 * max_num
    while True:
        prefix = order[:size]
        _, keep = batched_nms(boxes_for_nms[prefix], scores[prefix], idxs[prefix], cfg)
        if keep.numel() >= max_num or size >= count:
            keep = prefix[keep[:max_num]]
            return torch.cat([boxes[keep], scores[keep, None]], -1), keep
        size *= GROWTH


def topk_multiclass_nms(multi_bboxes: torch.Tensor, multi_scores: torch.Tensor,
                        score_thr: float, nms_cfg: dict, max_num: int = -1,
                        box_dim: int = 4) -> Tuple[torch.Tensor, torch.Tensor]:
    """mmdet's ``multiclass_nms`` (no score factors) with :func:`topk_batched_nms`.

    ``multi_bboxes`` (n, #class*box_dim) or (n, box_dim) for class-agnostic boxes,
    ``multi_scores`` (n, #class+1) with the background last. Returns dets (k, 5) and
    0-based labels (k,).
    """
    num_classes = multi_scores.size(1) - 1
    bboxes = multi_bboxes.view(multi_scores.size(0), -1, box_dim)
    bboxes = bboxes.expand(-1, num_classes, -1).reshape(-1, box_dim)
    scores = multi_scores[:, :-1].reshape(-1)
    labels = torch.arange(num_classes, device=scores.device).repeat(multi_scores.size(0))
    inds = (scores > score_thr).nonzero().squeeze(1)
    bboxes, scores, labels = bboxes[inds], scores[inds], labels[inds]
    if bboxes.numel() == 0:
        return torch.cat([bboxes, scores[:, None]], -1), labels
    dets, keep = topk_batched_nms(bboxes, scores, labels, nms_cfg, max_num)
    return dets, labels[keep]
