from .ps_roi_align import ps_roi_align, ps_roi_pool

__all__ = ['ps_roi_align', 'ps_roi_pool']
