"""Top-k classification accuracy for the ImageNet pretraining configs."""
from typing import Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric

from mmdet.registry import METRICS

from ..utils.errors import ConfigError


@METRICS.register_module()
class TopKAccuracy(BaseMetric):
    """Percentage of samples whose label is among the ``k`` highest scores.

    Reads ``pred_score`` and ``gt_label`` of the predicted data samples (as
    ``ImageClassifier`` returns them); reports ``accuracy/top1``, ``accuracy/top5``...

    Args:
        topk: the k values, positive ints, none larger than the number of classes.
    """

    default_prefix = 'accuracy'

    def __init__(self, topk: Sequence[int] = (1, 5), collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        topk = (topk,) if isinstance(topk, int) else tuple(topk)
        if not topk or any(isinstance(k, bool) or not isinstance(k, int) or k < 1
                           for k in topk):
            raise ConfigError(f'topk must be positive ints, got {topk!r}')
        self.topk = topk

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        maxk = max(self.topk)
        for sample in data_samples:
            score = sample['pred_score']
            if maxk > score.numel():
                raise ConfigError(f'topk {self.topk} asks for top-{maxk} of '
                                  f'{score.numel()} classes; use k <= {score.numel()}')
            top = score.topk(maxk).indices.cpu()
            label = int(sample['gt_label'])
            self.results.append([bool(label in top[:k]) for k in self.topk])

    def compute_metrics(self, results: list) -> dict:
        if not results:
            return {f'top{k}': float('nan') for k in self.topk}
        hits = torch.tensor(results, dtype=torch.float64)
        return {f'top{k}': float(hits[:, i].mean() * 100) for i, k in enumerate(self.topk)}
