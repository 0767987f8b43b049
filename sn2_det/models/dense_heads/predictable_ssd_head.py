"""mmdet's SSDHead with the attribute its prediction reads.

In mmdet 3.3.0 ``BaseDenseHead._predict_by_feat_single`` reads ``self.loss_cls``
(for V3Det's custom losses), which ``SSDHead`` never sets (it skips AnchorHead's
``__init__``), so every SSD prediction (validation, testing, DetInferencer) stops
with ``AttributeError: 'SSDHead' object has no attribute 'loss_cls'``
(open-mmlab/mmdetection issues 11063, 11305, 11780). SSD's loss is computed in its
own ``loss_by_feat`` and does not use a ``loss_cls`` module: ``None`` here, so the
prediction takes SSD's softmax branch, as in mmdet 3.0.
"""
from mmdet.models.dense_heads import SSDHead
from mmdet.registry import MODELS


@MODELS.register_module()
class PredictableSSDHead(SSDHead):

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_cls = None
