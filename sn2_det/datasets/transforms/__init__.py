from .robust_loading import LoadImageSafely, UnreadableImageError, decode_image

__all__ = ['LoadImageSafely', 'UnreadableImageError', 'decode_image']
