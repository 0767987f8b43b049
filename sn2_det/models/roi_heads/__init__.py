from .bbox_heads import TopKNMSBBoxHead
from .ohem_roi_head import OHEMRoIHead
from .ps_roi_extractor import PSRoIExtractor

__all__ = ['OHEMRoIHead', 'PSRoIExtractor', 'TopKNMSBBoxHead']
