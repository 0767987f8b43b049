from .bbox_heads import TopKNMSBBoxHead
from .ps_roi_extractor import PSRoIExtractor

__all__ = ['PSRoIExtractor', 'TopKNMSBBoxHead']
