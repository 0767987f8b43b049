"""sn2_det: the ShuffleNet V2 detection experiment as an mmdet plugin.

Importing the package only registers: its modules in mmdet's registries (a config
needs only ``custom_imports = dict(imports=['sn2_det'], allow_failed_imports=False)``),
a Runner (``runner_type = 'CheckedRunner'``, :mod:`sn2_det.engine.runner`), a
checkpoint loader scheme for local files that unpickles under ``weights_only=True``
(:mod:`sn2_det.utils.checkpoint`) and an atomic local file backend
(:mod:`sn2_det.engine.atomic_files`); docs/development.md lists these extension
points. ``sn2_det.config_file(name)`` is the path of a config shipped in the package,
for a ``_base_`` outside the repository (docs/development.md).
"""
from . import datasets, engine, evaluation, models  # noqa: F401  (registers the modules)
from .utils.checkpoint import register_safe_local_loader
from .utils.config import config_file  # noqa: F401  (shipped configs, for _base_)

register_safe_local_loader()

__version__ = '0.1.0'
