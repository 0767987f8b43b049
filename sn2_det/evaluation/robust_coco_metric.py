"""COCO detection metric that scores against what the dataset keeps of its annotation
file, maps labels to categories by class name, and reports unreadable images.

``CheckedCocoMetric`` takes mmdet's ``CocoMetric``'s arguments and differs in three ways:

- **Ground truth.** It evaluates against the annotations ``CheckedCocoDataset``
  keeps of the file, by the same rules (:func:`~sn2_det.datasets.checked_coco.
  kept_annotations_coco`): a box the dataset dropped with a warning (a bbox of 5
  numbers, null or a string, a segmentation without a bbox, a category that is no
  class) is not scored, and one that it clipped is scored clipped; every kept box has
  an ``area`` and ``iscrowd``. (mmdet's metric reads the raw file, and such boxes
  crash pycocotools or mmdet after the whole inference.) The ground truth is built when
  the runner gives the metric its dataset's meta (``dataset_meta``), before inference.
- **Categories by name.** The category id of label ``i`` is that of the category named
  ``classes[i]``, as the dataset labels its boxes, whatever the order of the ids in the
  file (mmdet's takes them in file order).
- **The dataset's file.** A test-mode ``CheckedCocoDataset`` names its annotation file
  in its meta; an ``ann_file`` that is another file (neither the same path nor the same
  bytes) is refused with an ``EvaluatorMismatchError`` as the runner builds the loop,
  before inference: its image ids and boxes are not the dataset's, and the score would
  mean nothing. Without ``ann_file`` the dataset's file is used.

Unreadable images: an image that ``LoadImageSafely(on_unreadable='placeholder')``
could not read reaches the model as a blank placeholder with ``img_unreadable=True``.
mmdet's ``CocoMetric`` would score its predictions like any other image's, so the image
would count as one where every object was missed. ``CheckedCocoMetric`` leaves such
images out of the COCO evaluation (its ``imgIds``), logs "N of M images could not be
read" with the first paths, and reports N as ``coco/unreadable_images``. If no image
could be read there is nothing to evaluate, and it raises.
"""
import filecmp
import os.path as osp
from typing import Dict, Optional, Sequence

from mmengine.logging import MMLogger

from mmdet.evaluation import CocoMetric
from mmdet.registry import METRICS

from ..datasets.checked_coco import kept_annotations_coco
from ..utils.errors import EvaluatorMismatchError, UnreadableDataError

# Paths named in the log line.
NAMED_PATHS = 5


def same_file(a: str, b: str) -> bool:
    """Whether two annotation paths name the same file or files with the same bytes
    (remote paths: the same string)."""
    if a == b:
        return True
    if '://' in a or '://' in b:
        return False
    if osp.realpath(a) == osp.realpath(b):
        return True
    return osp.isfile(a) and osp.isfile(b) and filecmp.cmp(a, b, shallow=False)


@METRICS.register_module()
class CheckedCocoMetric(CocoMetric):
    """mmdet's CocoMetric with the ground truth, category mapping and unreadable-image
    handling of this module's docstring; same arguments."""

    def __init__(self, ann_file: Optional[str] = None, *args, **kwargs):
        # The ground truth needs the classes, which come with dataset_meta.
        super().__init__(None, *args, **kwargs)
        self.ann_file = ann_file

    @CocoMetric.dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict) -> None:
        CocoMetric.dataset_meta.fset(self, dataset_meta)
        self._load_ground_truth()

    def _load_ground_truth(self) -> None:
        meta = self.dataset_meta or {}
        dataset_file = meta.get('ann_file')
        if self.ann_file and dataset_file and not same_file(self.ann_file, dataset_file):
            raise EvaluatorMismatchError(
                f"CheckedCocoMetric's ann_file {self.ann_file} is not the annotation file "
                f'of the dataset it scores, {dataset_file}: its images and boxes are not '
                f"the dataset's, so the score would mean nothing; set the evaluator's "
                f'ann_file to {dataset_file}, or leave it out to use the dataset\'s')
        ann_file = self.ann_file or dataset_file
        classes = meta.get('classes')
        if ann_file and classes:
            self._coco_api, self.cat_ids = kept_annotations_coco(ann_file, classes,
                                                                 self.backend_args)
        else:  # mmdet's own way: ground truth from the data samples' instances
            self._coco_api, self.cat_ids = None, None
        self.img_ids = None

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        readable = []
        for sample in data_samples:
            if sample.get('img_unreadable', False):
                self.results.append((dict(img_id=sample['img_id'],
                                          img_path=sample.get('img_path')), None))
            else:
                readable.append(sample)
        super().process(data_batch, readable)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        unreadable = [gt for gt, pred in results if pred is None]
        readable = [(gt, pred) for gt, pred in results if pred is not None]
        if unreadable:
            paths = [gt['img_path'] for gt in unreadable[:NAMED_PATHS]]
            more = ', ...' if len(unreadable) > NAMED_PATHS else ''
            MMLogger.get_current_instance().warning(
                f'{len(unreadable)} of {len(results)} images could not be read and are '
                f'left out of the COCO evaluation: {", ".join(map(str, paths))}{more}')
        if not readable:
            raise UnreadableDataError(f'none of the {len(results)} images could be read; there '
                                      f'is nothing to evaluate (see the warnings naming the files)')
        if self._coco_api is not None:
            skip = {gt['img_id'] for gt in unreadable}
            self.img_ids = [i for i in self._coco_api.get_img_ids() if i not in skip]
        metrics = super().compute_metrics(readable)
        metrics['unreadable_images'] = len(unreadable)
        return metrics
