from .topk_nms_rpn_head import TopKNMSRPNHead

__all__ = ['TopKNMSRPNHead']
