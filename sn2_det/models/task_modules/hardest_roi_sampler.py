"""OHEM as Light-Head R-CNN uses it: the hardest RoIs, whatever their label (mmdet's
``OHEMSampler`` mines positives and negatives separately).

Two keys choose between mmdet's ranking and the authors' (``sum_ohem_loss`` of
zengarden/light_head_rcnn): ``rank_by`` 'cls' ranks by classification loss (mmdet),
'cls+box' by classification loss plus the box loss of the positives (authors);
``pool`` 'image' keeps the ``num`` hardest of each image (mmdet, the paper's "256
per image"), 'batch' the ``num * images`` hardest of the whole batch (authors: 512
for 2 images a GPU), which needs ``roi_head=dict(type='OHEMRoIHead')``. Ranking is a
forward pass without gradients over every candidate; the losses of the kept RoIs
are then computed as usual.
"""
from typing import List, Sequence

import torch
from mmdet.models.task_modules.samplers import OHEMSampler, SamplingResult
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import bbox2roi, cat_boxes, get_box_tensor

from ...utils.validation import check_choice
from ...utils.errors import ConfigError

RANK_BY = ('cls', 'cls+box')
POOLS = ('image', 'batch')


@TASK_UTILS.register_module()
class HardestRoISampler(OHEMSampler):
    """Ranks every non-ignored candidate by its loss and keeps the top ``num`` (per
    image, or ``num`` times the images over the batch). ``pos_fraction`` is fixed to
    1 (no quota); mmdet's sampling flow asks for positives first, so the chosen
    negatives are kept for ``_sample_neg``."""

    def __init__(self, num: int, context, add_gt_as_proposals: bool = True,
                 rank_by: str = 'cls', pool: str = 'image', **kwargs):
        check_choice('rank_by', rank_by, RANK_BY)
        check_choice('pool', pool, POOLS)
        super().__init__(num, 1.0, context, add_gt_as_proposals=add_gt_as_proposals,
                         **kwargs)
        self.rank_by = rank_by
        self.pool = pool
        self._chosen_neg = None
        self._gt_bboxes = None

    # --- ranking ---------------------------------------------------------------------

    def roi_losses(self, feats, priors: List[torch.Tensor], labels: List[torch.Tensor],
                   targets: List[torch.Tensor]) -> torch.Tensor:
        """Per-RoI loss of the candidates of each image (one forward, no gradients):
        classification loss, plus the box loss of the positives with 'cls+box'.
        ``targets``: the assigned ground-truth box of each candidate."""
        head = self.bbox_head
        with torch.no_grad():
            rois = bbox2roi(priors)
            results = self.context._bbox_forward(feats, rois)
            labels = torch.cat(labels)
            cls_score = results['cls_score']
            loss = head.loss_cls(cls_score, labels, cls_score.new_ones(len(labels)),
                                 reduction_override='none')
            if self.rank_by == 'cls+box':
                pos = (labels >= 0) & (labels < head.num_classes)
                pred = results['bbox_pred']
                if not head.reg_class_agnostic:
                    pred = pred.view(pred.size(0), -1, 4)[torch.arange(len(pred)), labels
                                                          .clamp(max=head.num_classes - 1)]
                encoded = head.bbox_coder.encode(rois[:, 1:], torch.cat(targets))
                box = head.loss_bbox(pred, encoded, reduction_override='none').sum(-1)
                loss = loss + torch.where(pos, box, torch.zeros_like(box))
        return loss

    def _candidates(self, assign_result, gt_bboxes):
        """Indices of the non-ignored candidates, their labels (negatives: the
        background class) and assigned ground-truth boxes."""
        candidates = torch.nonzero(assign_result.gt_inds >= 0).squeeze(1)
        labels = assign_result.labels[candidates].clone()
        gt_inds = assign_result.gt_inds[candidates]
        labels[gt_inds == 0] = self.bbox_head.num_classes
        gt = get_box_tensor(gt_bboxes)
        if gt.numel():
            targets = gt[(gt_inds - 1).clamp(min=0)]
        else:
            targets = gt.new_zeros((len(candidates), 4))
        return candidates, labels, targets

    # --- per image (mmdet's flow) ----------------------------------------------------

    def sample(self, assign_result, pred_instances, gt_instances, **kwargs):
        if self.pool == 'batch':
            raise ConfigError("HardestRoISampler(pool='batch') ranks the RoIs of all "
                              "images together: set roi_head=dict(type='OHEMRoIHead')")
        self._gt_bboxes = gt_instances.bboxes
        try:
            return super().sample(assign_result, pred_instances, gt_instances, **kwargs)
        finally:
            self._gt_bboxes = None

    def _sample_pos(self, assign_result, num_expected, bboxes=None, feats=None, **kwargs):
        candidates, labels, targets = self._candidates(assign_result, self._gt_bboxes)
        if candidates.numel() > self.num:
            priors = get_box_tensor(bboxes)[candidates]
            loss = self.roi_losses(feats, [priors], [labels], [targets])
            candidates = candidates[loss.topk(self.num).indices]
        positive = assign_result.gt_inds[candidates] > 0
        self._chosen_neg = candidates[~positive]
        return candidates[positive]

    def _sample_neg(self, assign_result, num_expected, bboxes=None, feats=None, **kwargs):
        chosen, self._chosen_neg = self._chosen_neg, None
        return chosen

    # --- pooled over the batch (OHEMRoIHead) ------------------------------------------

    def sample_batch(self, assign_results: Sequence, pred_instances: Sequence,
                     gt_instances: Sequence, feats) -> List[SamplingResult]:
        """The ``num * len(assign_results)`` hardest candidates of all images."""
        priors, flags, found = [], [], []
        for assign_result, preds, gts in zip(assign_results, pred_instances, gt_instances):
            boxes = preds.priors
            gt_flags = boxes.new_zeros((boxes.shape[0],), dtype=torch.uint8)
            if self.add_gt_as_proposals and len(gts.bboxes) > 0:
                boxes = cat_boxes([gts.bboxes, boxes], dim=0)
                assign_result.add_gt_(gts.labels)
                gt_flags = torch.cat([boxes.new_ones(len(gts.bboxes), dtype=torch.uint8),
                                      gt_flags])
            priors.append(boxes)
            flags.append(gt_flags)
            found.append(self._candidates(assign_result, gts.bboxes))
        counts = [len(c) for c, _, _ in found]
        keep = self.num * len(assign_results)
        chosen = torch.ones(sum(counts), dtype=torch.bool, device=flags[0].device)
        if sum(counts) > keep:
            loss = self.roi_losses(feats, [get_box_tensor(p)[c] for p, (c, _, _) in
                                           zip(priors, found)],
                                   [lab for _, lab, _ in found], [t for _, _, t in found])
            chosen = torch.zeros_like(chosen)
            chosen[loss.topk(keep).indices] = True
        results = []
        for (candidates, _, _), mask, boxes, gt_flags, assign_result, gts in zip(
                found, chosen.split(counts), priors, flags, assign_results, gt_instances):
            picked = candidates[mask]
            positive = assign_result.gt_inds[picked] > 0
            results.append(SamplingResult(
                pos_inds=picked[positive].unique(), neg_inds=picked[~positive].unique(),
                priors=boxes, gt_bboxes=gts.bboxes, assign_result=assign_result,
                gt_flags=gt_flags))
        return results
