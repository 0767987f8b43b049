"""Reading configs and building models from them, as the tools need it."""
import os.path as osp

from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.registry import DefaultScope
from mmengine.utils import import_modules_from_strings

from mmdet.registry import MODELS


def read_config(path: str) -> Config:
    """A config file or an ``mmdet::`` path, with its ``custom_imports`` done."""
    if '::' in path:
        cfg = get_config(path)
    elif not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    else:
        cfg = Config.fromfile(path)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    return cfg


def build_in_mmdet_scope(cfg: dict):
    """``MODELS.build`` with mmdet's registries in scope, whatever scope is current."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg)
