"""mmdet's RPN head whose proposal NMS stops once ``max_per_img`` proposals are kept.

Light-Head R-CNN keeps 1000 of 6000 candidates at test (docs/paper.md Sec. 4);
:func:`~sn2_det.ops.nms.topk_batched_nms` finds the same 1000 from a short prefix of
the score-sorted candidates, where NMS over all 6000 cost most of the RPN's time on
CPU. The rest of ``_bbox_post_process`` (rescaling, the ``min_bbox_size`` filter)
restates mmdet 3.3's ``RPNHead``; everything else is inherited.
"""
import torch
from mmdet.models.dense_heads import RPNHead
from mmdet.registry import MODELS
from mmdet.structures.bbox import get_box_tensor, get_box_wh, scale_boxes

from ...ops.nms import topk_batched_nms
from ...utils.errors import ConfigError


@MODELS.register_module()
class TopKNMSRPNHead(RPNHead):
    """``RPNHead`` with :func:`topk_batched_nms` for the proposals (same proposals)."""

    def _bbox_post_process(self, results, cfg, rescale=False, with_nms=True,
                           img_meta=None):
        if not with_nms:
            raise ConfigError('an RPN head always applies NMS (with_nms=True)')
        if cfg.max_per_img < 1:
            raise ConfigError(f'max_per_img of the RPN (train_cfg.rpn_proposal, '
                              f'test_cfg.rpn) must be a positive int, got {cfg.max_per_img}')
        if rescale:
            results.bboxes = scale_boxes(results.bboxes,
                                         [1 / s for s in img_meta['scale_factor']])
        if cfg.get('min_bbox_size', -1) >= 0:
            w, h = get_box_wh(results.bboxes)
            valid = (w > cfg.min_bbox_size) & (h > cfg.min_bbox_size)
            if not valid.all():
                results = results[valid]
        if results.bboxes.numel() == 0:
            return super()._bbox_post_process(results, cfg, rescale=False,
                                              img_meta=img_meta)
        dets, keep = topk_batched_nms(get_box_tensor(results.bboxes), results.scores,
                                      results.level_ids, cfg.nms, cfg.max_per_img)
        results = results[keep]
        results.scores = dets[:, -1]
        results.labels = results.scores.new_zeros(len(results), dtype=torch.long)
        del results.level_ids
        return results
