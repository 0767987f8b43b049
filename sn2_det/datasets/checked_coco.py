"""COCO dataset whose annotations pass written rules, with a count per rule in the log.

``CheckedCocoDataset`` is mmdet's ``CocoDataset`` with these rules, applied to every
box before mmdet parses it, the first that applies deciding:

==============================================  =========================================
box                                             what happens
==============================================  =========================================
``ignore`` set                                  dropped (mmdet's own rule)
``bbox`` not four numbers                       dropped
NaN or infinite coordinate                      dropped
zero or negative width or height                dropped
category id not in the file's ``categories``    dropped; an error if no box has a known one
category not among the dataset's classes        dropped (a class subset, as in mmdet)
wholly outside the image                        dropped
partly outside the image                        clipped to the image
narrower or lower than 1 pixel inside it        dropped (mmdet drops w or h < 1 of the
                                                unclipped box; here after clipping)
``area`` <= 0                                   dropped (mmdet's own rule); a missing
                                                ``area`` is taken as the box area
``iscrowd`` set                                 kept as an ignored region (``ignore_flag``)
==============================================  =========================================

A box is partly outside when ``x < 0``, ``y < 0``, ``x + w > width`` or
``y + h > height`` (COCO's x, y, w, h; by more than ``EDGE_TOLERANCE`` pixels); a box
inside the image is kept with its coordinates as written. (A crowd box partly outside
the image is clipped and counted as clipped.)

**Categories map to classes by name.** The label of a box is the index in
``metainfo.classes`` of its category's ``name``, whatever the order of the ids in the
file (mmdet's ``CocoDataset`` takes them in file order, so a file listing 1 = square,
2 = circle would label squares as the class ``'circle'`` of ``('circle', 'square')``).
``cat_ids[label]`` is the category id of that class (None where the file has no
category of that name). A category name that is no class is reported in one warning
naming the file, the names and the classes, and its boxes are dropped: a class subset
is how mmdet users train on part of a dataset, so it is not an error; a name that
differs from a class only in case or spaces is pointed out. Errors, naming the file:
no category of the file is a class (every box would be dropped), a class named by two
categories, two ``images`` with the same id (pycocotools would keep the last one and
give it the boxes of both), two annotations with the same id (it would load the last
one twice), an image without a positive width and height.

An image whose boxes are all gone, or that had none, stays as a negative image;
``filter_cfg=dict(filter_empty_gt=True)`` removes such images in training (mmdet's
filter, here applied to the boxes that are left). One line per loaded file sums up the
counts (a warning when any box was dropped or clipped); ``annotation_counts`` holds
them. In test mode ``metainfo['ann_file']`` names the annotation file, so that
``CheckedCocoMetric`` scores against what this dataset keeps of it
(:func:`kept_annotations_coco`) and refuses another file.

**Images are read by** ``LoadImageSafely``
(:mod:`sn2_det.datasets.transforms.robust_loading`). A test-mode dataset reads with it
where its pipeline names mmcv's ``LoadImageFromFile`` (the name mmdet's
``DetInferencer`` looks for in a test pipeline; with the same ``to_float32`` and
``backend_args``): an unreadable image becomes a placeholder marked
``img_unreadable``, which ``CheckedCocoMetric`` leaves out. A training dataset must
name ``LoadImageSafely(on_unreadable='skip')`` itself (skipping changes what is
trained, so it is not chosen silently); ``on_unreadable='skip'`` in test mode
(evaluation must see every image) and ``'placeholder'`` in training (it would train on
blank images) are errors naming the choice to use.
"""
import logging
import math
from collections import Counter, defaultdict
from numbers import Real
from typing import List, Optional, Sequence, Tuple

from mmcv.transforms import LoadImageFromFile
from mmengine.fileio import get_local_path
from mmengine.logging import print_log

from mmdet.datasets import CocoDataset
from mmdet.datasets.api_wrappers import COCO
from mmdet.registry import DATASETS

from ..utils.errors import AnnotationError, ConfigError
from .transforms import LoadImageSafely

# (counter, text in the log line), in the order the rules apply.
DROP_RULES = (
    ('ignore', "with 'ignore' set"),
    ('malformed', 'bbox not four numbers'),
    ('non_finite', 'NaN or infinite coordinates'),
    ('non_positive', 'zero or negative width or height'),
    ('unknown_category', "category id not in 'categories'"),
    ('other_class', "category not among the dataset's classes"),
    ('outside', 'wholly outside the image'),
    ('tiny', 'under 1 pixel inside the image'),
    ('no_area', 'area <= 0'),
)
KEEP_RULES = (
    ('clipped', 'partly outside, clipped to the image'),
    ('crowd', 'crowd, kept as ignored regions'),
)
# Counters of the boxes whose category id is in 'categories'.
KNOWN_CATEGORY = ('other_class', 'outside', 'tiny', 'no_area', 'clipped', 'crowd', 'kept')
# A box edge this far (pixels) past the image border still counts as inside: the sum
# x + w of two floats may exceed the width by a rounding error.
EDGE_TOLERANCE = 1e-6
# Names listed in a log line or an error.
NAMED = 10
# mmcv's LoadImageFromFile arguments that LoadImageSafely reads the same way.
SAFE_LOADER_DEFAULTS = dict(color_type='color', imdecode_backend='cv2', ignore_empty=False)


def _named(items) -> str:
    items = list(items)
    more = f' and {len(items) - NAMED} more' if len(items) > NAMED else ''
    return f'{items[:NAMED]}{more}'


class CheckedCOCO(COCO):
    """mmdet's COCO API that rejects duplicate image and annotation ids instead of
    keeping the last."""

    def __init__(self, annotation_file: Optional[str] = None):
        self.annotation_file = annotation_file
        super().__init__(annotation_file)

    @classmethod
    def from_dict(cls, dataset: dict) -> 'CheckedCOCO':
        """A COCO API over an annotation dict already in memory."""
        coco = cls()
        coco.dataset = dataset
        coco.createIndex()
        coco.img_ann_map, coco.cat_img_map = coco.imgToAnns, coco.catToImgs
        return coco

    def createIndex(self):
        ids = Counter(img['id'] for img in self.dataset.get('images', []))
        duplicates = sorted((i for i, n in ids.items() if n > 1), key=str)
        if duplicates:
            names = [img.get('file_name') for img in self.dataset['images']
                     if img['id'] == duplicates[0]]
            raise AnnotationError(
                f'{self.annotation_file}: image id {duplicates[0]!r} appears {len(names)} '
                f'times in images (file names {names}); {len(duplicates)} id(s) are '
                f'duplicated in all: {duplicates[:10]}. Image ids must be unique')
        annotations = self.dataset.get('annotations', [])
        missing = sum(not isinstance(ann, dict) or 'id' not in ann for ann in annotations)
        if missing:
            raise AnnotationError(f'{self.annotation_file}: {missing} of the '
                                  f'{len(annotations)} annotations have no id')
        ids = Counter(ann['id'] for ann in annotations)
        duplicates = sorted((i for i, n in ids.items() if n > 1), key=str)
        if duplicates:
            raise AnnotationError(
                f'{self.annotation_file}: annotation id {duplicates[0]!r} appears '
                f'{ids[duplicates[0]]} times in annotations; {len(duplicates)} id(s) are '
                f'duplicated in all: {duplicates[:10]}. Annotation ids must be unique')
        super().createIndex()


def class_category_ids(coco: COCO, classes: Sequence[str],
                       ann_file: str) -> Tuple[List[Optional[int]], List[str]]:
    """The category id of each class, found by name (None where the file has no
    category of that name), and the file's category names that are no class."""
    ids_of = defaultdict(list)
    for cat in coco.dataset.get('categories', []):
        ids_of[cat.get('name')].append(cat['id'])
    for name in classes:
        if len(ids_of.get(name, ())) > 1:
            raise AnnotationError(f'{ann_file}: the class {name!r} is the name of '
                                  f'categories {ids_of[name]}; a class must be one '
                                  f'category')
    cat_ids = [ids_of[name][0] if name in ids_of else None for name in classes]
    unmatched = [name for name in ids_of if name not in classes]
    if coco.dataset.get('annotations') and all(i is None for i in cat_ids):
        raise AnnotationError(
            f'{ann_file}: none of its categories {_named(unmatched)} is a class of '
            f'metainfo.classes {_named(classes)}, so every box would be dropped; set '
            f'metainfo=dict(classes=...) to the category names to train on')
    return cat_ids, unmatched


def _box(bbox) -> Optional[List[float]]:
    if (not isinstance(bbox, (list, tuple)) or len(bbox) != 4
            or not all(isinstance(v, Real) and not isinstance(v, bool) for v in bbox)):
        return None
    return [float(v) for v in bbox]


class AnnotationRules:
    """The rules of the module docstring for one loaded COCO file and the classes.

    ``cat_ids`` and ``cat2label`` map categories to labels by name; ``keep`` applies
    the box rules to one annotation and counts the rule in ``counts``.
    """

    def __init__(self, coco: COCO, classes: Sequence[str], ann_file: str):
        self.ann_file = ann_file
        self.classes = tuple(classes)
        self.cat_ids, self.unmatched = class_category_ids(coco, self.classes, ann_file)
        self.cat2label = {cat_id: label for label, cat_id in enumerate(self.cat_ids)
                          if cat_id is not None}
        self.known_ids = set(coco.cats)
        self.unknown_ids = set()
        self.counts = Counter()

    def category_line(self) -> Tuple[Optional[str], int]:
        """The log line on categories that are no class and classes without a
        category (None if every name matched), and its level."""
        missing = [c for c, i in zip(self.classes, self.cat_ids) if i is None]
        if not self.unmatched and not missing:
            return None, logging.INFO
        parts = []
        if self.unmatched:
            lower = {c.strip().lower(): c for c in self.classes}
            near = [f'{name!r} differs from the class {lower[name.strip().lower()]!r} '
                    f'only in case or spaces' for name in self.unmatched
                    if isinstance(name, str) and name.strip().lower() in lower]
            parts.append(f'categories {_named(self.unmatched)} match no class of '
                         f'metainfo.classes {_named(self.classes)}; their boxes are '
                         f'dropped (a class subset, as in mmdet)'
                         + (f' ({"; ".join(near[:NAMED])})' if near else ''))
        if missing:
            parts.append(f'classes {_named(missing)} have no category in the file')
        return (f'{self.ann_file}: {"; ".join(parts)}',
                logging.WARNING if self.unmatched else logging.INFO)

    def image_size(self, img: dict) -> Tuple[Real, Real]:
        width, height = img.get('width'), img.get('height')
        if not all(isinstance(v, Real) and not isinstance(v, bool) and v > 0
                   for v in (width, height)):
            raise AnnotationError(f'{self.ann_file}: image id {img.get("id")!r} '
                                  f'({img.get("file_name")}) needs a positive width and '
                                  f'height, got {width!r} x {height!r}')
        return width, height

    def keep(self, ann: dict, width: Real, height: Real) -> Optional[dict]:
        """The annotation as kept (box clipped, area filled in), or None if dropped."""
        self.counts['boxes'] += 1
        rule, ann = self._check(ann, width, height)
        self.counts[rule] += 1
        return ann

    def check_totals(self) -> None:
        counts = self.counts
        if counts['unknown_category'] and not any(counts[k] for k in KNOWN_CATEGORY):
            raise AnnotationError(
                f'{self.ann_file}: none of its {counts["boxes"]} boxes has a category id '
                f'in categories {sorted(self.known_ids, key=str)[:20]} (ids found: '
                f'{sorted(self.unknown_ids, key=str)[:20]})')

    def _check(self, ann: dict, width: Real, height: Real):
        """(counter, annotation to keep or None) of one annotation."""
        if not isinstance(ann, dict):
            return 'malformed', None
        if ann.get('ignore', False):
            return 'ignore', None
        box = _box(ann.get('bbox'))
        if box is None:
            return 'malformed', None
        if not all(math.isfinite(v) for v in box):
            return 'non_finite', None
        x, y, w, h = box
        if w <= 0 or h <= 0:
            return 'non_positive', None
        category = ann.get('category_id')
        try:
            known = category in self.known_ids
        except TypeError:  # unhashable, e.g. a list
            category, known = repr(category), False
        if not known:
            self.unknown_ids.add(category)
            return 'unknown_category', None
        if category not in self.cat2label:
            return 'other_class', None
        width, height = float(width), float(height)
        inside = (x >= -EDGE_TOLERANCE and y >= -EDGE_TOLERANCE
                  and x + w <= width + EDGE_TOLERANCE and y + h <= height + EDGE_TOLERANCE)
        if not inside:
            x1, y1 = max(x, 0.0), max(y, 0.0)
            x2, y2 = min(x + w, width), min(y + h, height)
            if x2 <= x1 or y2 <= y1:
                return 'outside', None
            box = [x1, y1, x2 - x1, y2 - y1]
        if box[2] < 1 or box[3] < 1:
            return 'tiny', None
        area = ann.get('area')
        if isinstance(area, Real) and not isinstance(area, bool) and area <= 0:
            return 'no_area', None
        kept = dict(ann, bbox=box, area=area if isinstance(area, Real) and not isinstance(
            area, bool) and math.isfinite(area) else box[2] * box[3])
        if not inside:
            return 'clipped', kept
        return ('crowd' if ann.get('iscrowd', False) else 'kept'), kept


def kept_annotations_coco(ann_file: str, classes: Sequence[str],
                          backend_args: Optional[dict] = None) -> Tuple[COCO, List[int]]:
    """What ``CheckedCocoDataset`` keeps of ``ann_file`` for ``classes``, as a COCO API
    for pycocotools' evaluation, and the category id of each class (label).

    Every kept box has four numbers, an ``area`` and ``iscrowd``; the categories are the
    classes, each with its id in the file (a class the file lacks gets an unused id and
    no boxes, which pycocotools leaves out of the mean). Annotation ids are renumbered
    from 1.
    """
    with get_local_path(ann_file, backend_args=backend_args) as local_path:
        raw = CheckedCOCO(local_path)
    rules = AnnotationRules(raw, classes, ann_file)
    images, annotations = [], []
    for img_id in raw.get_img_ids():
        img = raw.load_imgs([img_id])[0]
        width, height = rules.image_size(img)
        images.append(dict(id=img_id, width=width, height=height,
                           file_name=img.get('file_name', '')))
        for ann in raw.load_anns(raw.get_ann_ids(img_ids=[img_id])):
            kept = rules.keep(ann, width, height)
            if kept is None:
                continue
            gt = dict(id=len(annotations) + 1, image_id=img_id, bbox=kept['bbox'],
                      category_id=kept['category_id'], area=kept['area'],
                      iscrowd=int(bool(kept.get('iscrowd', False))))
            if kept.get('segmentation'):
                gt['segmentation'] = kept['segmentation']
            annotations.append(gt)
    rules.check_totals()
    numbers = [i for i in raw.cats if isinstance(i, int)]
    unused = max(numbers, default=0) + 1
    cat_ids = []
    for cat_id in rules.cat_ids:
        if cat_id is None:
            cat_id, unused = unused, unused + 1
        cat_ids.append(cat_id)
    categories = [dict(id=i, name=name) for i, name in zip(cat_ids, rules.classes)]
    coco = CheckedCOCO.from_dict(dict(images=images, annotations=annotations,
                                      categories=categories))
    coco.annotation_file = ann_file
    return coco, cat_ids


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """mmdet's CocoDataset with the annotation rules, the mapping of categories to
    classes by name and the image reading of this module's docstring."""

    COCOAPI = CheckedCOCO

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._read_images_safely()
        if self.test_mode:
            self._metainfo['ann_file'] = self.ann_file

    def _read_images_safely(self) -> None:
        mode = 'test-mode' if self.test_mode else 'training'
        wrong, use, why = (('skip', "'placeholder' or 'raise'", 'evaluation must see every '
                            'image') if self.test_mode else
                           ('placeholder', "'skip' or 'raise'", 'it would train on blank '
                            'images'))
        transforms = self.pipeline.transforms
        for i, transform in enumerate(transforms):
            if isinstance(transform, LoadImageSafely):
                if transform.on_unreadable == wrong:
                    raise ConfigError(
                        f"LoadImageSafely(on_unreadable='{wrong}') does not fit a {mode} "
                        f'dataset ({why}); use on_unreadable={use}')
            elif type(transform) is LoadImageFromFile:
                if not self.test_mode:
                    raise ConfigError(
                        f'LoadImageFromFile in a training dataset of CheckedCocoDataset '
                        f'({self.ann_file}): what an unreadable image does in training is '
                        f"chosen in the pipeline: dict(type='LoadImageSafely', "
                        f"on_unreadable='skip', max_unreadable_share=0.01); use "
                        f"on_unreadable='skip' (or 'raise')")
                other = {k: getattr(transform, k) for k, v in SAFE_LOADER_DEFAULTS.items()
                         if getattr(transform, k) != v}
                if other:
                    raise ConfigError(
                        f'LoadImageFromFile({", ".join(f"{k}={v!r}" for k, v in other.items())}'
                        f') in a test-mode CheckedCocoDataset: it reads images with '
                        f'LoadImageSafely (colour images decoded by cv2, unreadable ones '
                        f'marked), which takes only to_float32 and backend_args')
                transforms[i] = LoadImageSafely(to_float32=transform.to_float32,
                                                backend_args=transform.backend_args)

    def load_data_list(self) -> List[dict]:
        with get_local_path(self.ann_file, backend_args=self.backend_args) as local_path:
            self.coco = self.COCOAPI(local_path)
        self._rules = AnnotationRules(self.coco, self.metainfo['classes'], self.ann_file)
        self.cat_ids, self.cat2label = self._rules.cat_ids, self._rules.cat2label
        line, level = self._rules.category_line()
        if line:
            print_log(line, logger='current', level=level)
        data_list = []
        for img_id in self.coco.get_img_ids():
            raw_img_info = dict(self.coco.load_imgs([img_id])[0], img_id=img_id)
            raw_ann_info = self.coco.load_anns(self.coco.get_ann_ids(img_ids=[img_id]))
            data_list.append(self.parse_data_info(dict(raw_img_info=raw_img_info,
                                                       raw_ann_info=raw_ann_info)))
        del self.coco
        self._rules.check_totals()
        self.annotation_counts = counts = self._rules.counts
        counts['images'] = len(data_list)
        counts['no_boxes'] = sum(not info['instances'] for info in data_list)
        # mmdet's filter_empty_gt reads it: the images of each class's boxes that are left
        self.cat_img_map = {cat_id: [] for cat_id in self.cat_ids}
        for info in data_list:
            for label in {inst['bbox_label'] for inst in info['instances']}:
                self.cat_img_map[self.cat_ids[label]].append(info['img_id'])
        self._log_counts()
        return data_list

    def _log_counts(self):
        counts = self.annotation_counts
        dropped = [f'{counts[key]} {text}' for key, text in DROP_RULES if counts[key]]
        kept = [f'{counts[key]} {text}' for key, text in KEEP_RULES if counts[key]]
        n_dropped = sum(counts[key] for key, _ in DROP_RULES)
        line = (f'{self.ann_file}: {counts["images"]} images, {counts["boxes"]} boxes; '
                f'kept {counts["boxes"] - n_dropped}'
                + (f' ({", ".join(kept)})' if kept else '')
                + f'; dropped {n_dropped}' + (f' ({", ".join(dropped)})' if dropped else '')
                + f'; {counts["no_boxes"]} images without boxes (negatives; '
                  f'filter_cfg.filter_empty_gt removes them in training)')
        level = logging.WARNING if n_dropped or counts['clipped'] else logging.INFO
        print_log(line, logger='current', level=level)

    def parse_data_info(self, raw_data_info: dict) -> dict:
        width, height = self._rules.image_size(raw_data_info['raw_img_info'])
        anns = [kept for kept in (self._rules.keep(ann, width, height)
                                  for ann in raw_data_info['raw_ann_info'])
                if kept is not None]
        return super().parse_data_info(dict(raw_data_info, raw_ann_info=anns))
