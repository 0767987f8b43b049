from . import image_folder  # noqa: F401  (registers ImageFolderDataset and its transforms)
