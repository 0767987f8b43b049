from .predictable_ssd_head import PredictableSSDHead
from .topk_nms_rpn_head import TopKNMSRPNHead

__all__ = ['PredictableSSDHead', 'TopKNMSRPNHead']
