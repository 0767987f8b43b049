from .light_head_rcnn import LightHeadRCNN

__all__ = ['LightHeadRCNN']
