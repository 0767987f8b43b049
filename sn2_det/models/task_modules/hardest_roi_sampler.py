"""OHEM as Light-Head R-CNN uses it: the ``num`` hardest RoIs of an image, whatever
their label (mmdet's ``OHEMSampler`` mines positives and negatives separately)."""
import torch

from mmdet.models.task_modules.samplers import OHEMSampler
from mmdet.registry import TASK_UTILS


@TASK_UTILS.register_module()
class HardestRoISampler(OHEMSampler):
    """Ranks every non-ignored candidate by its classification loss and keeps the
    top ``num``. ``pos_fraction`` is fixed to 1 (no quota); mmdet's sampling flow
    asks for positives first, so the chosen negatives are kept for ``_sample_neg``."""

    def __init__(self, num: int, context, add_gt_as_proposals: bool = True, **kwargs):
        super().__init__(num, 1.0, context, add_gt_as_proposals=add_gt_as_proposals,
                         **kwargs)
        self._chosen_neg = None

    def _sample_pos(self, assign_result, num_expected, bboxes=None, feats=None, **kwargs):
        candidates = torch.nonzero(assign_result.gt_inds >= 0).squeeze(1)
        labels = assign_result.labels[candidates].clone()
        is_neg = assign_result.gt_inds[candidates] == 0
        labels[is_neg] = self.bbox_head.num_classes
        if candidates.numel() > self.num:
            candidates = self.hard_mining(candidates, self.num, bboxes[candidates],
                                          labels, feats)
        positive = assign_result.gt_inds[candidates] > 0
        self._chosen_neg = candidates[~positive]
        return candidates[positive]

    def _sample_neg(self, assign_result, num_expected, bboxes=None, feats=None, **kwargs):
        chosen, self._chosen_neg = self._chosen_neg, None
        return chosen
