"""A local file backend that gives an image file's bytes only when they are a whole image.

mmcv's ``LoadImageFromFile``, which mmdet's ``DetInferencer`` and ``inference_detector``
run for a test pipeline's first entry, reads with ``mmengine.fileio.get(path,
backend_args)`` and decodes what it gets: a JPEG that ends before its end-of-image
marker is decoded with the missing part grey, and a file that does not decode stops it
with ``AssertionError: failed to load image``. With
``backend_args=dict(backend='checked_image')`` it reads through
:class:`CheckedImageBackend`, whose ``get`` applies the checks of
:func:`~sn2_det.datasets.transforms.decode_image` (an empty file, a truncated JPEG,
bytes that do not decode, a pixel type other than 8 or 16-bit integers; the same code
``LoadImageSafely`` runs) and otherwise raises ``UnreadableImageError`` naming the file
and the reason: ``cannot read image PATH: REASON`` (``no such file`` for a missing one).

The shipped test pipelines name it. ``LoadImageSafely``, which a test-mode
``CheckedCocoDataset`` runs in the place of mmcv's loader, applies the same checks
itself (and the annotation's size) and reads through the plain local backend, so a
dataset decodes each image once; mmcv's loader decodes the checked bytes a second time.
Everything but ``get`` (text, writes, listing) is the local backend's, writes atomic
(:mod:`sn2_det.engine.atomic_files`).
"""
from pathlib import Path
from typing import Union

from mmengine.fileio.backends import register_backend

from ..engine.atomic_files import AtomicLocalBackend
from .transforms.robust_loading import (CHECKED_IMAGE_BACKEND, UnreadableImageError,
                                       decode_image, read_image_file)


@register_backend(CHECKED_IMAGE_BACKEND)
class CheckedImageBackend(AtomicLocalBackend):
    """mmengine's local backend whose ``get`` returns only bytes that decode to a whole
    image, and raises ``UnreadableImageError`` naming the file otherwise."""

    def get(self, filepath: Union[str, Path]) -> bytes:
        try:
            data = read_image_file(super().get, filepath)
            decode_image(data)
        except UnreadableImageError as err:
            raise UnreadableImageError(f'cannot read image {filepath}: {err}') from err
        return data
