"""Pictures for the deployment checks and int8 calibration: generated toy-shapes
images (sn2_det.datasets.toy_shapes) at an export's input size with their ground
truth, the bundled toy dataset's splits, and the images of a folder."""
import json
import os
from typing import Sequence

import cv2
import numpy as np

from ..datasets.toy_shapes import draw_image, generate_toy_shapes
from .models import check_shape
from ..utils.errors import DataError, MissingFileError


def toy_pictures(shape: Sequence[int], count: int = 2, seed: int = 0):
    """``count`` toy-shapes pictures (sn2_det.datasets.toy_shapes) of size ``shape``:
    (image (3, H, W) float32 BGR 0..255, boxes, labels) each."""
    h, w = check_shape(shape)
    rng = np.random.default_rng(seed)
    pictures = []
    for _ in range(count):
        image, boxes, labels = draw_image(rng, h, w, max_objects=4)
        pictures.append((image.transpose(2, 0, 1).astype(np.float32),
                         np.array(boxes, np.float32).reshape(-1, 4), np.array(labels)))
    return pictures


TOY_ROOT = 'data/toy_shapes'  # where `make demo` writes the bundled toy dataset


def bundled_toy_dataset(root: str = TOY_ROOT) -> str:
    """``root`` holding the toy dataset made with the bundled defaults (600 train and
    100 val images of 256x256; generated there when missing). Returns ``root``."""
    generate_toy_shapes(root)
    return root


def toy_split(root: str, split: str = 'val'):
    """The toy dataset's ``split``: (image (3, H, W) float32 BGR 0..255, boxes x1, y1,
    x2, y2, 0-based labels) per image, in annotation order."""
    with open(os.path.join(root, 'annotations', f'instances_{split}.json')) as f:
        data = json.load(f)
    truths = {image['id']: ([], []) for image in data['images']}
    for ann in data['annotations']:
        x, y, w, h = ann['bbox']
        truths[ann['image_id']][0].append([x, y, x + w, y + h])
        truths[ann['image_id']][1].append(ann['category_id'] - 1)
    pictures = []
    for image in data['images']:
        path = os.path.join(root, split, image['file_name'])
        pixels = cv2.imread(path, cv2.IMREAD_COLOR)
        if pixels is None:
            raise MissingFileError(f'cannot read image {path}')
        boxes, labels = truths[image['id']]
        pictures.append((pixels.transpose(2, 0, 1).astype(np.float32),
                         np.array(boxes, np.float32).reshape(-1, 4), np.array(labels)))
    return pictures


IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp')


def folder_images(folder: str, shape: Sequence[int], count: int):
    """The first ``count`` images of ``folder`` (sorted by name; png, jpg, bmp),
    resized to ``shape`` (H, W): (3, H, W) float32 BGR 0..255 each."""
    h, w = check_shape(shape)
    if not os.path.isdir(folder):
        raise MissingFileError(f'image folder not found: {folder}')
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
        raise DataError(f'{folder} holds no images ({", ".join(IMAGE_EXTENSIONS)})')
    images = []
    for name in names[:count]:
        pixels = cv2.imread(os.path.join(folder, name), cv2.IMREAD_COLOR)
        if pixels is None:
            raise DataError(f'cannot read image {os.path.join(folder, name)}')
        if pixels.shape[:2] != (h, w):
            pixels = cv2.resize(pixels, (w, h), interpolation=cv2.INTER_LINEAR)
        images.append(pixels.transpose(2, 0, 1).astype(np.float32))
    return images
