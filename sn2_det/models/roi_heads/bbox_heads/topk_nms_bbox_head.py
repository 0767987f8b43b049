"""mmdet's ConvFC box head whose class-wise NMS stops once ``max_per_img`` boxes are kept.

At a low score threshold (0.001, for COCO mmAP) up to 1000 RoIs x 80 classes reach
the class-wise NMS, which then dominates the detector's CPU time; only the best
``max_per_img`` (100, docs/paper.md Sec. 4) survive. :func:`topk_multiclass_nms`
finds the same detections from a short prefix of the score-sorted candidates.
Everything else (softmax, box decoding, clipping, rescaling) is mmdet's.
"""
from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
from mmdet.registry import MODELS
from mmengine.structures import InstanceData

from ....ops.nms import topk_multiclass_nms


@MODELS.register_module()
class TopKNMSBBoxHead(ConvFCBBoxHead):
    """``ConvFCBBoxHead`` with :func:`topk_multiclass_nms` (same detections)."""

    def _predict_by_feat_single(self, roi, cls_score, bbox_pred, img_meta,
                                rescale=False, rcnn_test_cfg=None):
        if (rcnn_test_cfg is None or roi.shape[0] == 0 or self.custom_cls_channels
                or self.predict_box_type != 'hbox'):
            return super()._predict_by_feat_single(roi, cls_score, bbox_pred, img_meta,
                                                   rescale, rcnn_test_cfg)
        raw = super()._predict_by_feat_single(roi, cls_score, bbox_pred, img_meta,
                                              rescale, rcnn_test_cfg=None)
        dets, labels = topk_multiclass_nms(raw.bboxes, raw.scores,
                                           rcnn_test_cfg.score_thr, rcnn_test_cfg.nms,
                                           rcnn_test_cfg.max_per_img)
        return InstanceData(bboxes=dets[:, :-1], scores=dets[:, -1], labels=labels)
