"""The ``sn2_det`` registry scope: a child of mmdet's transform registry.

Everything else of the plugin registers in mmdet's own registries. This scope holds
one entry, ``LoadImageFromFile`` = :class:`~sn2_det.datasets.transforms.LoadImageSafely`,
so that a pipeline entry ``dict(type='LoadImageFromFile', _scope_='sn2_det')`` loads
images safely while carrying the name mmdet's ``DetInferencer`` looks for; any other
name falls through to mmdet's and mmcv's registries. mmengine imports this module
when it switches to the scope (``Registry.switch_scope_and_registry``).
"""
from mmengine.registry import Registry

from mmdet.registry import TRANSFORMS as MMDET_TRANSFORMS

SCOPE = 'sn2_det'

TRANSFORMS = Registry('transform', parent=MMDET_TRANSFORMS, scope=SCOPE,
                      locations=['sn2_det.datasets.transforms'])
