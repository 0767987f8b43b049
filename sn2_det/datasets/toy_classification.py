"""A tiny classification image set in the ImageNet layout, generated from a seed.

Four classes of textures that survive random crops and horizontal flips:
horizontal stripes, vertical stripes, a checkerboard and concentric rings, each with
random colours, period, phase and noise. Written as ``root/{train,val}/<class>/*.JPEG``
plus ``root/meta/val.txt`` (``class/name.JPEG label`` lines, the annotation-file
layout), for the tests of the pretraining code; a few dozen images take well under
a second.
"""
import json
import shutil
from pathlib import Path
from typing import Dict, Tuple

import cv2
import numpy as np

CLASSES = ('checker', 'hstripes', 'rings', 'vstripes')  # sorted, as folders are read
SPLITS = ('train', 'val')


def _pattern(label: str, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    period = rng.uniform(6, 14)
    phase = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    if label == 'hstripes':
        wave = np.sin(2 * np.pi * ys / period + phase)
    elif label == 'vstripes':
        wave = np.sin(2 * np.pi * xs / period + phase)
    elif label == 'checker':
        wave = np.sin(np.pi * xs / period + phase) * np.sin(np.pi * ys / period + phase)
    else:
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        wave = np.sin(2 * np.pi * np.hypot(ys - cy, xs - cx) / period + phase)
    mask = (wave > 0)[..., None]
    fg, bg = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    while np.abs(fg - bg).sum() < 150:
        bg = rng.integers(0, 256, 3)
    img = np.where(mask, fg, bg).astype(np.float32) + rng.normal(0, 10, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def generate_toy_classification(root: str, num_train: int = 8, num_val: int = 4,
                                image_size: Tuple[int, int] = (64, 64),
                                seed: int = 0) -> Dict[str, str]:
    """Write ``num_train`` / ``num_val`` images per class under ``root``.

    Does nothing when ``root`` already holds a set made with the same arguments; else
    the split folders are rewritten from scratch (no image of an older set stays).
    Returns the image folder of each split and the val annotation file.
    """
    root = Path(root)
    params = dict(num_train=num_train, num_val=num_val, image_size=list(image_size),
                  seed=seed)
    stamp = root / 'params.json'
    out = {split: str(root / split) for split in SPLITS}
    out['val_ann_file'] = str(root / 'meta' / 'val.txt')
    if (stamp.exists() and json.loads(stamp.read_text()) == params
            and all(Path(path).exists() for path in out.values())):
        return out
    for split in SPLITS:
        shutil.rmtree(root / split, ignore_errors=True)
    h, w = image_size
    lines = []
    for split, count, split_seed in (('train', num_train, seed),
                                     ('val', num_val, seed + 10007)):
        rng = np.random.default_rng(split_seed)
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                file = f'{name}_{index:04d}.JPEG'
                cv2.imwrite(str(folder / file), _pattern(name, rng, h, w))
                if split == 'val':
                    lines.append(f'{name}/{file} {label}')
    (root / 'meta').mkdir(exist_ok=True)
    Path(out['val_ann_file']).write_text('\n'.join(lines) + '\n')
    stamp.write_text(json.dumps(params))
    return out
