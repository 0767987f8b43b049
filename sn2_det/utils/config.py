"""Reading configs and building models from them, as the tools need it, and the
path of a config shipped inside the package (``sn2_det/.mim/configs``)."""
import glob
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.hub import get_config
from mmengine.registry import DefaultScope
from mmengine.utils import import_modules_from_strings

from mmdet.registry import MODELS

from .errors import ConfigError, MissingFileError
from .validation import closest

CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim', 'configs')


def shipped_configs() -> list:
    """Every config shipped with the package, relative to its configs folder."""
    paths = glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True)
    return sorted(osp.relpath(p, CONFIG_DIR).replace(osp.sep, '/') for p in paths)


def config_file(name: str) -> str:
    """Absolute path of the shipped config ``name`` (as under ``configs/``, e.g.
    ``'toy/lighthead_sn2_toy.py'``), for a ``_base_`` outside the repository::

        _base_ = __import__('sn2_det').config_file('lighthead_sn2.py')

    mmengine evaluates the ``_base_`` expression while it reads the file, before
    ``custom_imports`` and with no import statement of the file run, hence
    ``__import__`` (docs/development.md says why not ``sn2_det::``).
    """
    path = osp.join(CONFIG_DIR, name)
    if not osp.isfile(path):
        names = shipped_configs()
        if not names:
            raise MissingFileError(f'no configs are shipped under {CONFIG_DIR}: the '
                                   f'package was installed without them')
        hint = closest(name, names)
        raise MissingFileError(
            f'{name!r} is not a config shipped with sn2_det'
            + (f' (did you mean {hint[0]!r}?)' if hint else '')
            + f'; the shipped configs are: {", ".join(names)}')
    return path


def read_config(path: str) -> Config:
    """A config file or an ``mmdet::`` path, with its ``custom_imports`` done."""
    if '::' in path:
        cfg = get_config(path)
    elif not osp.isfile(path):
        raise MissingFileError(f'config file not found: {path}')
    else:
        try:
            cfg = Config.fromfile(path)
        except SyntaxError as err:  # mmengine parses the file before it runs it
            inner = err.__cause__ or err.__context__  # mmengine re-raises the parser's
            cause = inner if isinstance(inner, SyntaxError) else err
            where = f' line {cause.lineno}' if getattr(cause, 'lineno', None) else ''
            raise ConfigError(f'config {path}{where}: syntax error '
                              f'({getattr(cause, "msg", None) or err})') from err
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    return cfg


class ConfigOptionsAction(DictAction):
    """mmengine's ``DictAction`` for ``--cfg-options KEY=VALUE ...``; an item without
    ``=`` or without a key is a ConfigError naming it (mmengine's own action fails on
    it with a ValueError of tuple unpacking)."""

    def __call__(self, parser, namespace, values, option_string=None):
        for item in values or []:
            key, sep, _ = item.partition('=')
            if not sep or not key.strip():
                raise ConfigError(f'{option_string or "--cfg-options"}: {item!r} is not '
                                  f'KEY=VALUE (e.g. model.backbone.widen_factor=1.5 or '
                                  f'train_cfg.max_epochs=12)')
        super().__call__(parser, namespace, values, option_string)


def build_in_mmdet_scope(cfg: dict):
    """``MODELS.build`` with mmdet's registries in scope, whatever scope is current."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg)
