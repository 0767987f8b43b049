"""Before a run: the model config's module types exist (issue 7, the config rows).

mmengine reports an unknown type only when the runner builds the model, as a KeyError
that names the type but not the config key. :func:`check_model_types` looks up the
type of each module slot of ``cfg.model`` in mmdet's model registry first and names
the key, the type and the closest registered ones.
"""
from mmdet.registry import MODELS

from ..utils.validation import closest
from ..utils.errors import ConfigError

SLOTS = ('', 'data_preprocessor', 'backbone', 'neck', 'rpn_head', 'roi_head',
         'roi_head.bbox_roi_extractor', 'roi_head.bbox_head', 'bbox_head')


def _registered_names():
    names, registry = set(), MODELS
    while registry is not None:
        names |= set(registry.module_dict)
        registry = registry.parent
    return sorted(names)


def check_model_types(cfg) -> None:
    """Raise a ValueError naming ``model.<slot>.type`` when a slot's type is not a
    registered model (after the config's ``custom_imports``)."""
    for slot in SLOTS:
        node = cfg.get('model')
        for part in filter(None, slot.split('.')):
            node = node.get(part) if isinstance(node, dict) else None
        name = node.get('type') if isinstance(node, dict) else None
        if isinstance(name, str) and MODELS.get(name) is None:
            close = closest(name.split('.')[-1], _registered_names(), n=3, cutoff=0.6)
            hint = f'; closest registered: {", ".join(close)}' if close else ''
            key = '.'.join(filter(None, ('model', slot, 'type')))
            raise ConfigError(f"{key}: {name!r} is not a registered model type (mmdet's "
                              f'MODELS registry, with the custom_imports of the config)'
                              f'{hint}')
