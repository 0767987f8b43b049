"""ImageNet-style classification data: the dataset and its few transforms.

Layouts (paths under ``data_root``):

- folders: ``<data_prefix.img_path>/<class>/<image>`` (ImageNet train, and val after
  the usual ``valprep.sh``); the classes are the sorted folder names, or
  ``metainfo=dict(classes=...)`` in that order;
- annotation file: ``ann_file`` of ``relative/path label`` lines, paths relative to
  ``data_prefix.img_path`` (ImageNet val as it is often distributed).

The pipeline of the configs, all registered in mmdet's TRANSFORMS: ``ReadImage``
(cv2 decode, BGR uint8) -> training: ``RandomResizedCrop``, ``ColorJitter``, mmdet's
``RandomFlip``; testing: ``ResizeShortSide``, mmcv's ``CenterCrop`` -> ``PackClsInputs``.
mmcv 2.1 has no random-resized crop, short-side resize or colour jitter of this kind,
so those are written here.
"""
import math
import os
import os.path as osp
from typing import List, Optional, Sequence

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine import fileio
from mmengine.dataset import BaseDataset
from mmengine.structures import BaseDataElement

from mmdet.registry import DATASETS, TRANSFORMS

from ..utils.errors import DataError, MissingFileError

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.ppm', '.pgm', '.tif', '.tiff',
                  '.webp')


@DATASETS.register_module()
class ImageFolderDataset(BaseDataset):
    """Classification dataset in the ImageNet folder layout or with a label file.

    Args:
        ann_file: optional file of ``relative/path label`` lines (labels are integers
            from 0); without it, the class folders under the image prefix are read.
        data_prefix: ``dict(img_path='train/')``, the image folder under data_root.
        metainfo: ``dict(classes=(...))`` fixes the class order (required to name
            classes with an annotation file; otherwise they are '0', '1', ...).
        Other arguments as in mmengine's ``BaseDataset``.
    """

    METAINFO: dict = dict(classes=None)

    def __init__(self, data_root: str = '', data_prefix: dict = dict(img_path=''),
                 ann_file: str = '', **kwargs):
        if 'img_path' not in data_prefix:
            raise DataError(f"data_prefix must have the key 'img_path', got {data_prefix}")
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=data_prefix,
                         **kwargs)

    def load_data_list(self) -> List[dict]:
        img_dir = self.data_prefix['img_path']
        if not osp.isdir(img_dir):
            raise MissingFileError(f'image folder {img_dir} does not exist')
        if self.ann_file:
            samples = self._read_ann_file(img_dir)
        else:
            samples = self._scan_folders(img_dir)
        if not samples:
            raise DataError(f'no images found in {self.ann_file or img_dir} '
                            f'(extensions {IMG_EXTENSIONS})')
        return [dict(img_path=path, gt_label=label) for path, label in samples]

    def _scan_folders(self, img_dir: str) -> list:
        folders = sorted(e.name for e in os.scandir(img_dir) if e.is_dir())
        classes = self._metainfo.get('classes')
        if classes is None:
            classes = folders
        else:
            unknown = sorted(set(folders) - set(classes))
            if unknown:
                raise DataError(f'class folders {unknown} in {img_dir} are not in '
                                f'metainfo classes {tuple(classes)}')
        self._metainfo['classes'] = tuple(classes)
        samples = []
        for label, name in enumerate(classes):
            folder = osp.join(img_dir, name)
            if not osp.isdir(folder):
                continue
            for root, _, files in sorted(os.walk(folder, followlinks=True)):
                samples += [(osp.join(root, f), label) for f in sorted(files)
                            if f.lower().endswith(IMG_EXTENSIONS)]
        return samples

    def _read_ann_file(self, img_dir: str) -> list:
        classes = self._metainfo.get('classes')
        samples = []
        for number, line in enumerate(fileio.get_text(self.ann_file).splitlines(), 1):
            if not line.strip():
                continue
            parts = line.strip().rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].lstrip('-').isdigit():
                raise DataError(f'{self.ann_file} line {number}: expected '
                                f"'relative/path label', got {line!r}")
            label = int(parts[1])
            if label < 0 or (classes is not None and label >= len(classes)):
                bound = f'< {len(classes)}' if classes is not None else '>= 0'
                raise DataError(f'{self.ann_file} line {number}: label {label} must be '
                                f'{bound}')
            samples.append((osp.join(img_dir, parts[0]), label))
        if classes is None and samples:
            self._metainfo['classes'] = tuple(
                str(i) for i in range(max(label for _, label in samples) + 1))
        return samples


@TRANSFORMS.register_module()
class ReadImage(BaseTransform):
    """Read ``results['img_path']`` and decode it with cv2 to a BGR uint8 image.

    A missing file raises FileNotFoundError, an undecodable one ValueError, both
    naming the file.
    """

    def __init__(self, backend_args: Optional[dict] = None):
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        path = results['img_path']
        try:
            data = fileio.get(path, backend_args=self.backend_args)
        except FileNotFoundError as err:
            raise MissingFileError(f'image {path} does not exist') from err
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise DataError(f'cannot decode image {path} ({len(data)} bytes): the file '
                            f'is corrupt, truncated or not an image')
        results['img'] = img
        results['img_shape'] = results['ori_shape'] = img.shape[:2]
        return results


def _check_range(name: str, value: Sequence[float], low: float) -> tuple:
    if len(value) != 2 or not low < value[0] <= value[1]:
        raise DataError(f'{name} must be (min, max) with {low} < min <= max, got {value!r}')
    return tuple(float(v) for v in value)


@TRANSFORMS.register_module()
class RandomResizedCrop(BaseTransform):
    """Crop a random area fraction in ``scale`` and aspect ratio in ``ratio`` (log
    uniform), resize it to ``size`` x ``size`` (the Inception / ImageNet crop).

    After 10 tries without a fitting crop, the centre crop of the image with the
    aspect ratio clamped to ``ratio`` is taken.
    """

    def __init__(self, size: int, scale: Sequence[float] = (0.08, 1.0),
                 ratio: Sequence[float] = (3 / 4, 4 / 3)):
        if not isinstance(size, int) or size <= 0:
            raise DataError(f'size must be a positive int, got {size!r}')
        self.size = size
        self.scale = _check_range('scale', scale, 0)
        self.ratio = _check_range('ratio', ratio, 0)
        if self.scale[1] > 1:
            raise DataError(f'scale must lie in (0, 1], got {scale!r}')

    def _box(self, h: int, w: int) -> tuple:
        log_ratio = np.log(self.ratio)
        for _ in range(10):
            area = h * w * np.random.uniform(*self.scale)
            aspect = math.exp(np.random.uniform(*log_ratio))
            cw, ch = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
            if 0 < cw <= w and 0 < ch <= h:
                return (np.random.randint(0, h - ch + 1), np.random.randint(0, w - cw + 1),
                        ch, cw)
        aspect = min(max(w / h, self.ratio[0]), self.ratio[1])
        cw, ch = (w, round(w / aspect)) if w / h < aspect else (round(h * aspect), h)
        cw, ch = min(cw, w), min(ch, h)
        return (h - ch) // 2, (w - cw) // 2, ch, cw

    def transform(self, results: dict) -> dict:
        img = results['img']
        y, x, ch, cw = self._box(*img.shape[:2])
        img = cv2.resize(img[y:y + ch, x:x + cw], (self.size, self.size),
                         interpolation=cv2.INTER_LINEAR)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        return results


@TRANSFORMS.register_module()
class ResizeShortSide(BaseTransform):
    """Resize (bilinear, aspect ratio kept) so that the shorter side is ``size``."""

    def __init__(self, size: int):
        if not isinstance(size, int) or size <= 0:
            raise DataError(f'size must be a positive int, got {size!r}')
        self.size = size

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        scale = self.size / min(h, w)
        new_w, new_h = max(int(w * scale + 0.5), 1), max(int(h * scale + 0.5), 1)
        img = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        return results


@TRANSFORMS.register_module()
class ColorJitter(BaseTransform):
    """Random brightness, contrast and saturation, in random order.

    Each factor is drawn from [1 - s, 1 + s]; brightness scales the image,
    contrast blends it with its mean grey level, saturation with its grey image
    (the definitions of torchvision's ColorJitter, which the official ShuffleNet
    training uses with 0.4, 0.4, 0.4). 0 turns one off.
    """

    def __init__(self, brightness: float = 0.0, contrast: float = 0.0,
                 saturation: float = 0.0):
        self.strengths = dict(brightness=brightness, contrast=contrast,
                              saturation=saturation)
        for name, value in self.strengths.items():
            if not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise DataError(f'{name} must be a number in [0, 1), got {value!r}')

    def transform(self, results: dict) -> dict:
        img = results['img'].astype(np.float32)
        for index in np.random.permutation(3):
            name = ('brightness', 'contrast', 'saturation')[index]
            strength = self.strengths[name]
            if not strength:
                continue
            factor = np.random.uniform(1 - strength, 1 + strength)
            if name == 'brightness':
                base = 0.0
            else:
                grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[..., None]
                base = grey.mean() if name == 'contrast' else grey
            img = np.clip(base + factor * (img - base), 0, 255)
        results['img'] = img.round().astype(np.uint8)
        return results


@TRANSFORMS.register_module()
class PackClsInputs(BaseTransform):
    """Pack ``img`` as a (3, H, W) uint8 tensor and ``gt_label`` into a data sample."""

    META_KEYS = ('img_path', 'ori_shape', 'img_shape', 'flip')

    def transform(self, results: dict) -> dict:
        img = np.ascontiguousarray(results['img'].transpose(2, 0, 1))
        sample = BaseDataElement(
            metainfo={k: results[k] for k in self.META_KEYS if k in results})
        if 'gt_label' in results:
            sample.gt_label = torch.tensor(results['gt_label'], dtype=torch.long)
        return dict(inputs=torch.from_numpy(img), data_samples=sample)
