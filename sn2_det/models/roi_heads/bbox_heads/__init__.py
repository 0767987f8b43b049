from .topk_nms_bbox_head import TopKNMSBBoxHead

__all__ = ['TopKNMSBBoxHead']
