"""Before a run: every head's ``num_classes`` equals its datasets' number of classes.

mmdet trains a head of 80 classes on a 3-class dataset without complaint; the run
fails only at its end, in the COCO metric ("IndexError: list index out of range" in
``results2json``), after a day on COCO-sized data. :func:`check_class_counts` compares
each ``num_classes`` of ``cfg.model`` (the class-agnostic ``rpn_head`` aside) with the
classes of the train, val and test datasets, from the config alone: a dataset's
``metainfo.classes``, or where it sets none, its type's ``METAINFO`` (mmdet's
``CocoDataset``: the 80 COCO classes). Dataset wrappers (``dataset=``,
``datasets=[...]``, :class:`SeededDataset`'s ``dataset_type``) are looked through.
"""
from typing import Dict, Iterator, Tuple

from mmdet.registry import DATASETS

from ..utils.errors import ConfigError

SPLITS = ('train', 'val', 'test')
# Heads that score objectness, not classes (mmdet's RPN heads have num_classes=1).
CLASS_AGNOSTIC = ('rpn_head',)


def head_class_counts(model_cfg, prefix: str = 'model') -> Dict[str, int]:
    """``{'model.roi_head.bbox_head.num_classes': 80, ...}``: every ``num_classes`` of a
    model config outside the class-agnostic heads."""
    found = {}

    def walk(node, key):
        if isinstance(node, dict):
            for name, value in node.items():
                if name in CLASS_AGNOSTIC:
                    continue
                if name == 'num_classes' and isinstance(value, int) \
                        and not isinstance(value, bool):
                    found[f'{key}.num_classes'] = value
                else:
                    walk(value, f'{key}.{name}')
        elif isinstance(node, (list, tuple)):
            for index, value in enumerate(node):
                walk(value, f'{key}[{index}]')

    walk(model_cfg, prefix)
    return found


def dataset_classes(dataset_cfg, key: str) -> Iterator[Tuple[str, tuple]]:
    """``(where, classes)`` for each dataset inside ``dataset_cfg`` whose classes the
    config decides; ``where`` says which key (or type's default) gave them."""
    if not isinstance(dataset_cfg, dict):
        return
    if isinstance(dataset_cfg.get('dataset'), dict):
        yield from dataset_classes(dataset_cfg['dataset'], f'{key}.dataset')
        return
    if isinstance(dataset_cfg.get('datasets'), (list, tuple)):
        for index, inner in enumerate(dataset_cfg['datasets']):
            yield from dataset_classes(inner, f'{key}.datasets[{index}]')
        return
    metainfo = dataset_cfg.get('metainfo')
    if isinstance(metainfo, dict) and metainfo.get('classes'):
        yield f'{key}.metainfo.classes', tuple(metainfo['classes'])
        return
    # SeededDataset is a flat wrapper: `dataset_type` is the dataset it builds
    kind = dataset_cfg.get('dataset_type', dataset_cfg.get('type'))
    cls = DATASETS.get(kind) if isinstance(kind, str) else kind
    classes = (getattr(cls, 'METAINFO', None) or {}).get('classes')
    if classes:
        name = getattr(cls, '__name__', kind)
        yield f'{key} (no metainfo.classes: {name}.METAINFO)', tuple(classes)


def shown_classes(classes: tuple, limit: int = 6) -> str:
    """The first ``limit`` class names, quoted, with ', ...' when there are more."""
    names = ', '.join(repr(c) for c in classes[:limit])
    return names + (', ...' if len(classes) > limit else '')


def check_class_counts(cfg, splits=SPLITS) -> None:
    """Raise ConfigError naming the head's key and the dataset's key, with both values,
    when a ``num_classes`` of ``cfg.model`` differs from the classes of a dataset of
    ``splits`` (those the config has)."""
    heads = head_class_counts(cfg.get('model') or {})
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        dataset = loader.get('dataset') if isinstance(loader, dict) else None
        for where, classes in dataset_classes(dataset, f'{split}_dataloader.dataset'):
            for head, count in heads.items():
                if count != len(classes):
                    raise ConfigError(
                        f'{head} = {count}, but {where} has {len(classes)} classes '
                        f'({shown_classes(classes)}): set {head}={len(classes)} (or give the '
                        f'dataset the {count} classes of the head in its '
                        f'metainfo=dict(classes=...))')
