from . import checked_image_backend  # noqa: F401  (registers the 'checked_image' backend)
from . import image_folder  # noqa: F401  (registers ImageFolderDataset and its transforms)
from . import seeded_sampling  # noqa: F401  (registers SeededSampler, SeededDataset)
from .checked_coco import CheckedCocoDataset
from .transforms import LoadImageSafely

__all__ = ['CheckedCocoDataset', 'LoadImageSafely']
