"""COCO detection metric that reports unreadable images (issue 7, image rows).

An image that ``LoadImageSafely(on_unreadable='placeholder')`` could not read reaches
the model as a blank placeholder with ``img_unreadable=True``. mmdet's ``CocoMetric``
would score its predictions like any other image's, so the image would count as one
where every object was missed. ``CheckedCocoMetric`` leaves such images out of the
COCO evaluation (its ``imgIds``), logs "N of M images could not be read" with the
first paths, and reports N as ``coco/unreadable_images``. If no image could be read
there is nothing to evaluate, and it raises.
"""
from typing import Dict, Sequence

from mmengine.logging import MMLogger

from mmdet.evaluation import CocoMetric
from mmdet.registry import METRICS

from ..utils.errors import UnreadableDataError

# Paths named in the log line.
NAMED_PATHS = 5


@METRICS.register_module()
class CheckedCocoMetric(CocoMetric):
    """mmdet's CocoMetric that counts and excludes unreadable images; same arguments."""

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
