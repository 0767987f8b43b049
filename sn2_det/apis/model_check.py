"""Before a run: each module slot of the model config names a registered type, and
every key of the slot is an argument of that type.

mmengine reports an unknown type only when the runner builds the model, as a KeyError
that names the type but not the config key, and a key the module does not take as
Python's TypeError naming neither the config key nor the valid ones.
:func:`check_model_types` looks up the type of each module slot of ``cfg.model`` in
mmdet's model registry first and names the key, the type and the closest registered
ones; :func:`check_model_arguments` compares the keys of each slot with the
arguments of its registered class (``inspect.signature`` of ``__init__``, followed up
the class's bases while an ``__init__`` passes ``**kwargs`` on) and names the key,
the closest valid name and the valid ones.
"""
from mmengine.registry import DefaultScope

from mmdet.registry import MODELS

from ..utils.errors import ConfigError, SN2DetError
from ..utils.validation import check_arguments, closest_registered

# The module slots of a detector config that MODELS.build builds from their keys.
SLOTS = ('', 'data_preprocessor', 'backbone', 'neck', 'rpn_head', 'roi_head',
         'roi_head.bbox_roi_extractor', 'roi_head.bbox_head', 'bbox_head',
         'rpn_head.loss_cls', 'rpn_head.loss_bbox', 'roi_head.bbox_head.loss_cls',
         'roi_head.bbox_head.loss_bbox', 'bbox_head.loss_cls', 'bbox_head.loss_bbox')


def _slots(cfg):
    """``(key, node)`` of each module slot the model config has."""
    for slot in SLOTS:
        node = cfg.get('model')
        for part in filter(None, slot.split('.')):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get('type'), str):
            yield '.'.join(filter(None, ('model', slot))), node


def check_model_types(cfg) -> None:
    """Raise ConfigError naming ``model.<slot>.type`` when a slot's type is not a
    registered model (after the config's ``custom_imports``)."""
    for key, node in _slots(cfg):
        name = node['type']
        if MODELS.get(name) is None:
            hint = closest_registered(name.split('.')[-1], MODELS, cutoff=0.6)
            raise ConfigError(f"{key}.type: {name!r} is not a registered model type "
                              f"(mmdet's MODELS registry, with the custom_imports of the "
                              f'config){hint}')


def check_model_arguments(cfg) -> None:
    """Raise UnknownArgumentError naming ``model.<slot>.<key>`` when a slot has a key
    that its registered type does not take, with the closest and the valid names."""
    for key, node in _slots(cfg):
        check_arguments(MODELS.get(node['type']), node, where=key)


def check_backbone(cfg) -> None:
    """Build ``model.backbone`` alone (a fraction of a second, no weights loaded), so
    that its own checks (``widen_factor``, ``out_indices``, ...) fail before the run
    and name the key."""
    backbone = (cfg.get('model') or {}).get('backbone')
    if not isinstance(backbone, dict):
        return
    with DefaultScope.overwrite_default_scope('mmdet'):
        try:
            MODELS.build(backbone)
        except SN2DetError as err:
            raise type(err)(f'model.backbone: {err}') from err


def check_model_builds(cfg) -> None:
    """Build the whole model once (seconds at most, no weights loaded): the checks
    the modules make of each other (channels, strides, the order of the outputs)
    fail before the runner is built."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        MODELS.build(cfg.model)


def check_model_config(cfg) -> None:
    """:func:`check_model_types`, :func:`check_model_arguments`,
    :func:`check_backbone`, then :func:`check_model_builds`."""
    check_model_types(cfg)
    check_model_arguments(cfg)
    check_backbone(cfg)
    check_model_builds(cfg)
