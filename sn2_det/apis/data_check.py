"""Dataset paths checked before a run starts (instead of failing deep in a worker).

For every dataloader and COCO evaluator in a config: its ``data_root`` must be a
directory, its annotation file must exist, and a ``CocoDataset``'s annotation file
must be COCO JSON (an object with ``images``, ``annotations`` and ``categories``).
The error names the config key and the path.
"""
import json
import os.path as osp

from ..utils.errors import DataError, MissingFileError

COCO_KEYS = ('images', 'annotations', 'categories')
# Parsing a very large annotation file twice costs time; above this size only its
# first character is checked here (mmdet parses it right after).
FULL_PARSE_BYTES = 100 * 2 ** 20
# mmdet's COCO types and ours that extend them (sn2_det.datasets, sn2_det.evaluation).
COCO_DATASETS = ('CocoDataset', 'CheckedCocoDataset')
COCO_METRICS = ('CocoMetric', 'CheckedCocoMetric')


def _check_coco_json(key: str, path: str) -> None:
    if osp.getsize(path) > FULL_PARSE_BYTES:
        with open(path, 'rb') as f:
            head = f.read(64).lstrip()
        if not head.startswith(b'{'):
            raise DataError(f'{key}: {path} is not COCO JSON (no JSON object)')
        return
    try:
        with open(path) as f:
            data = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise DataError(f'{key}: {path} is not JSON ({err})') from err
    missing = [k for k in COCO_KEYS if not isinstance(data, dict) or k not in data]
    if missing:
        raise DataError(f'{key}: {path} is not COCO JSON: missing {", ".join(missing)} '
                        f'(COCO needs {", ".join(COCO_KEYS)})')


def _check_dataset(key: str, dataset: dict) -> None:
    if 'dataset' in dataset:  # dataset wrappers (RepeatDataset, ...)
        _check_dataset(f'{key}.dataset', dataset['dataset'])
        return
    root = dataset.get('data_root') or ''
    if root and not osp.isdir(root):
        raise MissingFileError(f'{key}.data_root: {root} is not a directory')
    ann = dataset.get('ann_file') or ''
    if ann:
        path = ann if osp.isabs(ann) else osp.join(root, ann)
        if not osp.isfile(path):
            raise MissingFileError(f'{key}.ann_file: {path} does not exist')
        # SeededDataset names the dataset it wraps in `dataset_type`
        if dataset.get('dataset_type', dataset.get('type')) in COCO_DATASETS:
            _check_coco_json(f'{key}.ann_file', path)


def check_data_paths(cfg, splits=('train', 'val', 'test')) -> None:
    """Raise before the run if a dataset or evaluator path of ``splits`` is wrong."""
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if loader and loader.get('dataset'):
            _check_dataset(f'{split}_dataloader.dataset', loader['dataset'])
        evaluators = cfg.get(f'{split}_evaluator') if split != 'train' else None
        for i, evaluator in enumerate(evaluators if isinstance(evaluators, (list, tuple))
                                      else [evaluators] if evaluators else []):
            ann = evaluator.get('ann_file')
            if evaluator.get('type') in COCO_METRICS and ann:
                key = f'{split}_evaluator' + (f'[{i}]' if isinstance(evaluators, list) else '')
                if not osp.isfile(ann):
                    raise MissingFileError(f'{key}.ann_file: {ann} does not exist')
