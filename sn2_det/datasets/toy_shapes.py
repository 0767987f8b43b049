"""A small COCO-format detection dataset, generated deterministically from a seed.

Circles, squares and triangles of random colour and size are drawn on textured
backgrounds (smooth colour gradients, noise and clutter lines). Boxes are the tight
boxes of the drawn pixels. It is the bundled default of ``make demo``: big enough
for a detector to learn on a 2-core CPU in minutes, small enough to generate in
seconds (``python tools/make_toy_dataset.py``).
"""
import hashlib
import json
from pathlib import Path
from typing import Dict, Tuple

import cv2
import numpy as np

CLASSES = ('circle', 'square', 'triangle')
SPLITS = ('train', 'val')


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    corners = rng.uniform(0, 255, size=(2, 2, 3)).astype(np.float32)
    img = cv2.resize(corners, (w, h), interpolation=cv2.INTER_LINEAR)
    blobs = cv2.resize(rng.uniform(-40, 40, size=(6, 6, 3)).astype(np.float32), (w, h),
                       interpolation=cv2.INTER_CUBIC)
    img = img + blobs + rng.normal(0, 8, size=(h, w, 3)).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(0, 4)):
        p1 = tuple(int(v) for v in rng.integers(0, (w, h)))
        p2 = tuple(int(v) for v in rng.integers(0, (w, h)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.line(img, p1, p2, colour, int(rng.integers(1, 3)))
    return img


def _draw(mask: np.ndarray, label: int, cx: float, cy: float, size: float,
          angle: float) -> None:
    if label == 0:
        cv2.circle(mask, (int(cx), int(cy)), int(size / 2), 1, -1)
        return
    sides = 4 if label == 1 else 3
    radius = size / 2 * (np.sqrt(2) if sides == 4 else 1.15)
    theta = angle + np.arange(sides) * 2 * np.pi / sides
    pts = np.stack([cx + radius * np.cos(theta), cy + radius * np.sin(theta)], 1)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)


def draw_image(rng: np.random.Generator, h: int, w: int, max_objects: int):
    """One toy picture (h, w, 3) uint8 with 1..max_objects shapes, their boxes (x1, y1,
    x2, y2) and labels."""
    img = _background(rng, h, w)
    boxes, labels, taken = [], [], np.zeros((h, w), bool)
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            label = int(rng.integers(0, len(CLASSES)))
            size = float(rng.uniform(0.12, 0.4) * min(h, w))
            cx, cy = rng.uniform(size / 2, w - size / 2), rng.uniform(size / 2, h - size / 2)
            mask = np.zeros((h, w), np.uint8)
            _draw(mask, label, cx, cy, size, float(rng.uniform(0, 2 * np.pi)))
            region = mask.astype(bool)
            if region.sum() > 30 and (taken & region).sum() < 0.1 * region.sum():
                break
        else:
            continue
        colour = rng.integers(0, 256, 3)
        while np.abs(img[region].mean(0) - colour).sum() < 120:
            colour = rng.integers(0, 256, 3)
        img[region] = colour
        taken |= region
        ys, xs = np.nonzero(region)
        boxes.append([int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1])
        labels.append(label)
    return img, boxes, labels


def generate_toy_shapes(root: str, num_train: int = 600, num_val: int = 100,
                        image_size: Tuple[int, int] = (256, 256), max_objects: int = 4,
                        seed: int = 0) -> Dict[str, str]:
    """Write ``root/{train,val}/*.png`` and ``root/annotations/instances_*.json``.

    Does nothing when ``root`` already holds a dataset made with the same arguments.
    Returns the annotation file of each split.
    """
    root = Path(root)
    params = dict(num_train=num_train, num_val=num_val, image_size=list(image_size),
                  max_objects=max_objects, seed=seed)
    stamp = root / 'params.json'
    anns = {split: str(root / 'annotations' / f'instances_{split}.json') for split in SPLITS}
    if stamp.exists() and json.loads(stamp.read_text()) == params and all(
            Path(a).exists() for a in anns.values()):
        return anns
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    h, w = image_size
    categories = [dict(id=i + 1, name=name) for i, name in enumerate(CLASSES)]
    for split, count, split_seed in (('train', num_train, seed),
                                     ('val', num_val, seed + 10007)):
        (root / split).mkdir(exist_ok=True)
        rng = np.random.default_rng(split_seed)
        images, annotations = [], []
        for index in range(count):
            img, boxes, labels = draw_image(rng, h, w, max_objects)
            name = f'{index:05d}.png'
            cv2.imwrite(str(root / split / name), img)
            images.append(dict(id=index + 1, file_name=name, height=h, width=w))
            for (x1, y1, x2, y2), label in zip(boxes, labels):
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=index + 1, category_id=label + 1,
                    bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1),
                    iscrowd=0))
        Path(anns[split]).write_text(json.dumps(dict(
            images=images, annotations=annotations, categories=categories)))
    stamp.write_text(json.dumps(params))
    return anns


def dataset_digest(root: str) -> str:
    """SHA-256 over the annotation files and images, to check determinism."""
    digest = hashlib.sha256()
    for path in sorted(Path(root).rglob('*')):
        if path.is_file() and path.name != 'params.json':
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


# COCO 2017 class names the toy classes take in generate_toy_coco, in CLASSES' order:
# COCO's first three, so that the toy category ids 1, 2, 3 keep their meaning.
COCO_NAMES = ('person', 'bicycle', 'car')


def generate_toy_coco(root: str, num_train: int = 8, num_val: int = 4,
                      image_size: Tuple[int, int] = (64, 64), max_objects: int = 2,
                      seed: int = 0) -> Dict[str, str]:
    """The toy shapes in COCO 2017's layout and under COCO class names, so that a COCO
    config reads them with only its ``data_root`` changed: ``root/toy`` as
    :func:`generate_toy_shapes` writes it, ``root/{train,val}2017`` (copies of its
    images) and ``root/annotations/instances_{train,val}2017.json`` (its circles,
    squares and triangles named ``COCO_NAMES``, among all 80 COCO categories with ids
    1..80 in mmdet's order, so that every class a detector predicts has a category).
    Returns the annotation files."""
    import shutil

    from mmdet.datasets import CocoDataset
    coco_classes = CocoDataset.METAINFO['classes']
    assert coco_classes[:len(COCO_NAMES)] == COCO_NAMES
    root = Path(root)
    toy = generate_toy_shapes(str(root / 'toy'), num_train, num_val, image_size,
                              max_objects, seed)
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    anns = {}
    for split in SPLITS:
        images = root / f'{split}2017'
        shutil.rmtree(images, ignore_errors=True)
        shutil.copytree(root / 'toy' / split, images)
        data = json.loads(Path(toy[split]).read_text())
        assert [c['name'] for c in data['categories']] == list(CLASSES)
        data['categories'] = [dict(id=i + 1, name=name) for i, name in enumerate(coco_classes)]
        anns[split] = str(root / 'annotations' / f'instances_{split}2017.json')
        Path(anns[split]).write_text(json.dumps(data))
    return anns
