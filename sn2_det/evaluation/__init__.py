from .accuracy import TopKAccuracy
from .robust_coco_metric import CheckedCocoMetric

__all__ = ['TopKAccuracy', 'CheckedCocoMetric']
