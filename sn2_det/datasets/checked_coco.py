"""COCO dataset whose annotations pass written rules, with a count per rule in the log
(issue 7, the annotation rows of the bad-input matrix).

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

(A crowd box partly outside the image is clipped and counted as clipped.)

An image whose boxes are all gone, or that had none, stays as a negative image;
``filter_cfg=dict(filter_empty_gt=True)`` removes such images in training (mmdet's
filter, here applied to the boxes that are left). Two entries of ``images`` with the
same id are an error naming the id and the file (pycocotools would keep the last one
and give it the boxes of both), as is an image without a positive width and height.
One line per loaded file sums up the counts (a warning when any box was dropped or
clipped); ``annotation_counts`` holds them.

The pipeline's ``LoadImageSafely`` must fit the mode: ``on_unreadable='skip'`` in test
mode (evaluation must see every image) and ``'placeholder'`` in training (it would
train on blank images) are errors naming the choice to use.
"""
import logging
import math
from collections import Counter
from numbers import Real
from typing import List, Optional

from mmengine.logging import print_log

from mmdet.datasets import CocoDataset
from mmdet.datasets.api_wrappers import COCO
from mmdet.registry import DATASETS

from .transforms import LoadImageSafely
from ..utils.errors import DataError

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


class CheckedCOCO(COCO):
    """mmdet's COCO API that rejects duplicate image ids instead of keeping the last."""

    def __init__(self, annotation_file: Optional[str] = None):
        self.annotation_file = annotation_file
        super().__init__(annotation_file)

    def createIndex(self):
        ids = Counter(img['id'] for img in self.dataset.get('images', []))
        duplicates = sorted((i for i, n in ids.items() if n > 1), key=str)
        if duplicates:
            names = [img.get('file_name') for img in self.dataset['images']
                     if img['id'] == duplicates[0]]
            raise DataError(
                f'{self.annotation_file}: image id {duplicates[0]!r} appears {len(names)} '
                f'times in images (file names {names}); {len(duplicates)} id(s) are '
                f'duplicated in all: {duplicates[:10]}. Image ids must be unique')
        super().createIndex()


def _box(bbox) -> Optional[List[float]]:
    if (not isinstance(bbox, (list, tuple)) or len(bbox) != 4
            or not all(isinstance(v, Real) and not isinstance(v, bool) for v in bbox)):
        return None
    return [float(v) for v in bbox]


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """mmdet's CocoDataset with the annotation rules of this module's docstring."""

    COCOAPI = CheckedCOCO

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        wrong, use, why = (('skip', "'placeholder' or 'raise'", 'evaluation must see every '
                            'image') if self.test_mode else
                           ('placeholder', "'skip' or 'raise'", 'it would train on blank '
                            'images'))
        for transform in self.pipeline.transforms:
            if isinstance(transform, LoadImageSafely) and transform.on_unreadable == wrong:
                raise DataError(
                    f"LoadImageSafely(on_unreadable='{wrong}') does not fit a "
                    f"{'test-mode' if self.test_mode else 'training'} dataset ({why}); "
                    f'use on_unreadable={use}')

    def load_data_list(self) -> List[dict]:
        self.annotation_counts = Counter()
        self._known_ids, self._unknown_ids = None, set()
        data_list = super().load_data_list()
        counts = self.annotation_counts
        if counts['unknown_category'] and not any(counts[k] for k in KNOWN_CATEGORY):
            raise DataError(
                f'{self.ann_file}: none of its {counts["boxes"]} boxes has a category id '
                f'in categories {sorted(self._known_ids, key=str)[:20]} (ids found: '
                f'{sorted(self._unknown_ids, key=str)[:20]})')
        counts['images'] = len(data_list)
        counts['no_boxes'] = sum(not info['instances'] for info in data_list)
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
        img = raw_data_info['raw_img_info']
        width, height = img.get('width'), img.get('height')
        if not all(isinstance(v, Real) and v > 0 for v in (width, height)):
            raise DataError(f'{self.ann_file}: image id {img.get("id")!r} '
                            f'({img.get("file_name")}) needs a positive width and height, '
                            f'got {width!r} x {height!r}')
        if self._known_ids is None:
            self._known_ids = set(self.coco.cats)
        anns = []
        for ann in raw_data_info['raw_ann_info']:
            self.annotation_counts['boxes'] += 1
            rule, ann = self._check(ann, width, height)
            self.annotation_counts[rule] += 1
            if ann is not None:
                anns.append(ann)
        return super().parse_data_info(dict(raw_data_info, raw_ann_info=anns))

    def _check(self, ann: dict, width: float, height: float):
        """(counter, annotation to keep or None) of one annotation."""
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
        if ann.get('category_id') not in self._known_ids:
            self._unknown_ids.add(ann.get('category_id'))
            return 'unknown_category', None
        if ann['category_id'] not in self.cat_ids:
            return 'other_class', None
        x1, y1 = max(x, 0.0), max(y, 0.0)
        x2, y2 = min(x + w, float(width)), min(y + h, float(height))
        if x2 <= x1 or y2 <= y1:
            return 'outside', None
        if x2 - x1 < 1 or y2 - y1 < 1:
            return 'tiny', None
        area = ann.get('area')
        if isinstance(area, Real) and area <= 0:
            return 'no_area', None
        clipped = [x1, y1, x2 - x1, y2 - y1]
        ann = dict(ann, bbox=clipped,
                   area=area if isinstance(area, Real) and math.isfinite(area)
                   else clipped[2] * clipped[3])
        if clipped != box:
            return 'clipped', ann
        return ('crowd' if ann.get('iscrowd', False) else 'kept'), ann
