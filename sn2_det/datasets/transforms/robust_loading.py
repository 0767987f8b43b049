"""Image loading that converts unusual images and survives unreadable ones.

``LoadImageSafely`` reads ``img_path`` as mmcv's ``LoadImageFromFile`` does and gives a
BGR uint8 image (float32 with ``to_float32``) for every readable file:

- EXIF orientation is applied, as image viewers and most annotation tools show the
  photo; when the annotation's recorded ``width`` x ``height`` fits only the
  unrotated pixels, those are used, since the boxes were drawn on them;
- grayscale images become 3 channels (the grey value repeated), palette images their
  colours;
- RGBA and grey+alpha images keep their colour channels; alpha is dropped, not
  composited (as cv2 and PIL's ``convert('RGB')`` do);
- 16-bit images are scaled to 8 bits over their full range (v * 255 / 65535,
  rounded), never truncated;
- any size (16x16 and 8000x6000 are tested).

A file is unreadable when it is missing, empty, not decodable (corrupt or truncated;
cv2 returns nothing for a truncated PNG, and a JPEG that ends before its end-of-image
marker is caught here, because cv2 4.x decodes the missing part as grey), of another
pixel type (float), or when its decoded size is not the annotation's. Damage inside
JPEG data that libjpeg decodes past (with a warning on stderr) is not detected.
What happens then is ``on_unreadable``:

- ``'placeholder'`` (the default, for evaluation, where mmengine refuses ``None``):
  one warning per file (per data-loading process) naming the file and the reason, a
  black image of the annotation's size and ``img_unreadable=True`` in the results
  (outside a dataset, where no annotation gives a size, an
  ``UnreadableImageError`` instead),
  which ``CheckedCocoMetric`` counts and leaves out of the COCO evaluation (pack it
  with ``PackDetInputs(meta_keys=(..., 'img_unreadable'))``);
- ``'skip'`` (training): the same warning, then ``None``: mmengine's ``BaseDataset``
  fetches another random sample (outside test mode). Once at least ``min_attempts``
  images have been loaded, a share of unreadable loads above
  ``max_unreadable_share`` stops the run with an ``UnreadableDataError`` naming
  both;
- ``'raise'``: an ``UnreadableImageError`` naming the file and the reason.

Training pipelines name it, ``dict(type='LoadImageSafely', on_unreadable='skip',
max_unreadable_share=0.01)``. Test pipelines name mmcv's ``LoadImageFromFile``, the
entry mmdet's ``DetInferencer`` looks for and replaces with its ``InferencerLoader``
(mmcv's loader for paths, ``LoadImageFromNDArray`` for arrays), with
``backend_args=dict(backend='checked_image')``: the file backend of
:mod:`sn2_det.datasets.checked_image_backend`, which applies :func:`decode_image`'s
checks and raises ``UnreadableImageError`` naming the file; a test-mode
``CheckedCocoDataset`` reads its images with this class instead (unreadable: a marked
placeholder), see :mod:`sn2_det.datasets.checked_coco`. ``CheckedCocoDataset`` rejects
``'skip'`` in test mode and ``'placeholder'`` in training.
"""
import logging
from typing import Callable, Optional

import cv2
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmengine.logging import print_log

from mmdet.registry import TRANSFORMS

from ...utils.errors import ConfigError, UnreadableDataError, UnreadableImageError
from ...utils.validation import check_bool, check_choice

ON_UNREADABLE = ('placeholder', 'skip', 'raise')
# The file backend that applies decode_image's checks for mmcv's LoadImageFromFile
# (sn2_det.datasets.checked_image_backend); LoadImageSafely applies them itself.
CHECKED_IMAGE_BACKEND = 'checked_image'


def jpeg_is_truncated(data: bytes) -> bool:
    """True if a JPEG stream ends before its end-of-image marker (FFD9).

    The marker segments are walked by their lengths up to the first scan (so the EXIF
    thumbnail's own markers are skipped); FFD9 cannot occur inside entropy-coded data,
    so it must follow somewhere after that scan. A stream this walk does not
    understand is left to the decoder (False).
    """
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker == 0xDA:  # start of scan
            return data.find(b'\xff\xd9', pos + 2) < 0
        elif marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
        else:
            pos += 2 + int.from_bytes(data[pos + 2:pos + 4], 'big')
    return True


def read_image_file(read: Callable[[str], bytes], path: str) -> bytes:
    """``read(path)``, a missing or unreadable file raised as ``UnreadableImageError``."""
    try:
        return read(path)
    except FileNotFoundError as err:
        raise UnreadableImageError('no such file') from err
    except OSError as err:
        raise UnreadableImageError(f'cannot read the file ({err})') from err


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return cv2.convertScaleAbs(img, alpha=255 / 65535)
    raise UnreadableImageError(f'unsupported pixel type {img.dtype} (8 or 16-bit '
                               f'integer images are read)')


def decode_image(data: bytes, expected_hw: Optional[tuple] = None) -> np.ndarray:
    """Decode image bytes to BGR uint8 by the rules of the module docstring.

    ``expected_hw`` is the annotation's (height, width); a decoded size that differs
    (after trying the unrotated pixels) raises ``UnreadableImageError``.
    """
    if not data:
        raise UnreadableImageError('empty file (0 bytes)')
    if data[:2] == b'\xff\xd8' and jpeg_is_truncated(data):
        raise UnreadableImageError(f'truncated JPEG ({len(data)} bytes, no end-of-image '
                                   f'marker)')
    buf = np.frombuffer(data, np.uint8)
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH
    img = cv2.imdecode(buf, flags)
    if img is None:
        raise UnreadableImageError(f'cannot decode its {len(data)} bytes: corrupt, '
                                   f'truncated or not an image')
    if expected_hw is not None and img.shape[:2] != tuple(expected_hw):
        if img.shape[:2] == tuple(expected_hw)[::-1]:
            raw = cv2.imdecode(buf, flags | cv2.IMREAD_IGNORE_ORIENTATION)
            if raw is not None and raw.shape[:2] == tuple(expected_hw):
                img = raw
        if img.shape[:2] != tuple(expected_hw):
            (h, w), (eh, ew) = img.shape[:2], expected_hw
            raise UnreadableImageError(f'decoded size {w}x{h} (width x height) is not '
                                       f"the annotation's {ew}x{eh}")
    return _to_uint8(img)


@TRANSFORMS.register_module()
class LoadImageSafely(LoadImageFromFile):
    """Load ``img_path``, converting unusual images and handling unreadable ones.

    Args:
        on_unreadable: ``'placeholder'`` (evaluation), ``'skip'`` (training) or
            ``'raise'``; see the module docstring.
        max_unreadable_share: with ``'skip'``, the largest tolerated share of
            unreadable loads, in [0, 1].
        min_attempts: with ``'skip'``, loads before that share is checked, so that
            one bad file among the first few does not stop a run.
        check_size: compare the decoded size with the annotation's ``height`` and
            ``width`` where the dataset gives them (mmdet's COCO datasets do).
        to_float32, backend_args: as in mmcv's ``LoadImageFromFile``; with
            ``backend='checked_image'`` the bytes are read by the local backend,
            since this class checks them itself.

    Adds ``img_unreadable`` (False, or True for a placeholder) to the results.
    """

    def __init__(self, on_unreadable: str = 'placeholder', max_unreadable_share: float = 0.01,
                 min_attempts: int = 100, check_size: bool = True,
                 to_float32: bool = False, backend_args: Optional[dict] = None):
        check_choice('on_unreadable', on_unreadable, ON_UNREADABLE)
        if (isinstance(max_unreadable_share, bool)
                or not isinstance(max_unreadable_share, (int, float))
                or not 0 <= max_unreadable_share <= 1):
            raise ConfigError(f'max_unreadable_share must be a number in [0, 1], got '
                              f'{max_unreadable_share!r}')
        if isinstance(min_attempts, bool) or not isinstance(min_attempts, int) \
                or min_attempts < 1:
            raise ConfigError(f'min_attempts must be a positive int, got {min_attempts!r}')
        check_bool('check_size', check_size)
        super().__init__(to_float32=to_float32, backend_args=backend_args)
        self.on_unreadable = on_unreadable
        self.max_unreadable_share = float(max_unreadable_share)
        self.min_attempts = min_attempts
        self.check_size = check_size
        self._read_args = (dict(backend_args, backend='local') if backend_args
                           and backend_args.get('backend') == CHECKED_IMAGE_BACKEND
                           else backend_args)
        self.attempts = 0
        self.unreadable = 0
        self._warned = set()

    def _expected_hw(self, results: dict) -> Optional[tuple]:
        if self.check_size and results.get('height') and results.get('width'):
            return int(results['height']), int(results['width'])
        return None

    def transform(self, results: dict) -> Optional[dict]:
        path = results['img_path']
        self.attempts += 1
        try:
            data = read_image_file(
                lambda p: fileio.get(p, backend_args=self._read_args), path)
            img = decode_image(data, self._expected_hw(results))
        except UnreadableImageError as err:
            return self._unreadable(results, path, str(err))
        return self._set_image(results, img, unreadable=False)

    def _set_image(self, results: dict, img: np.ndarray, unreadable: bool) -> dict:
        results['img'] = img.astype(np.float32) if self.to_float32 else img
        results['img_shape'] = results['ori_shape'] = img.shape[:2]
        results['img_unreadable'] = unreadable
        return results

    def _unreadable(self, results: dict, path: str, reason: str) -> Optional[dict]:
        self.unreadable += 1
        has_size = bool(results.get('height') and results.get('width'))
        if self.on_unreadable == 'raise' or (self.on_unreadable == 'placeholder'
                                             and not has_size):
            raise UnreadableImageError(f'cannot read image {path}: {reason}')
        if path not in self._warned:
            self._warned.add(path)
            action = ('skipped, training goes on' if self.on_unreadable == 'skip' else
                      'a blank placeholder is evaluated and left out of the metric')
            print_log(f'cannot read image {path}: {reason}; {action}', logger='current',
                      level=logging.WARNING)
        if self.on_unreadable == 'placeholder':
            shape = (int(results['height']), int(results['width']), 3)
            return self._set_image(results, np.zeros(shape, np.uint8), unreadable=True)
        share = self.unreadable / self.attempts
        if self.attempts >= self.min_attempts and share > self.max_unreadable_share:
            raise UnreadableDataError(
                f'{self.unreadable} of the {self.attempts} images loaded so far could not '
                f'be read ({share:.1%}), more than max_unreadable_share='
                f'{self.max_unreadable_share:g} of LoadImageSafely in the training '
                f'pipeline; the warnings above name the files. Fix the data or raise the '
                f'limit')
        return None

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(on_unreadable={self.on_unreadable!r}, '
                f'max_unreadable_share={self.max_unreadable_share}, '
                f'min_attempts={self.min_attempts}, check_size={self.check_size}, '
                f'to_float32={self.to_float32}, backend_args={self.backend_args})')
