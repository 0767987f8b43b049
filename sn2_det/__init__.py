"""sn2_det: the ShuffleNet V2 detection experiment as an mmdet plugin.

Importing the package registers every module in mmdet's registries (a config needs
only ``custom_imports = dict(imports=['sn2_det'], allow_failed_imports=False)``) and
makes mmengine load local checkpoints under ``weights_only=True``
(:mod:`sn2_det.utils.checkpoint`) and detector checkpoints only where they fit
(:mod:`sn2_det.apis.detector_checkpoint`). ``sn2_det.config_file(name)`` is the path
of a config shipped in the package, for a ``_base_`` outside the repository
(docs/install.md).
"""
from . import datasets, engine, evaluation, models  # noqa: F401  (registers the modules)
from .apis.detector_checkpoint import guard_detector_loading
from .utils.checkpoint import register_safe_local_loader
from .utils.config import config_file  # noqa: F401  (shipped configs, for _base_)

register_safe_local_loader()
guard_detector_loading()

__version__ = '0.1.0'
