"""Before a run: the settings of the loops, the dataloaders and the optimizer.

Each of these fails late, or not at all, when left to the runner: a ``batch_size`` of
0 as a traceback of torch's DataLoader after the model is built, an
``optim_wrapper.optimizer.lr`` of ``'abc'`` as a TypeError of the optimizer, and a
``train_cfg.max_epochs`` of 0 as a run that trains nothing and exits 0. The checks
here name the config key, the value and what it must be.
"""
import inspect
import numbers

from mmdet.registry import OPTIMIZERS

from ..utils.errors import ConfigError
from ..utils.validation import check_arguments, closest_registered


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _shown(value) -> str:
    return f'{value!r} ({type(value).__name__})'


def check_dataloaders(cfg, splits=('train', 'val', 'test')) -> None:
    """``batch_size`` a positive int and ``num_workers`` an int >= 0 in each
    ``<split>_dataloader`` the config has."""
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not isinstance(loader, dict):
            continue
        key = f'{split}_dataloader'
        if 'batch_size' in loader and not (_is_int(loader['batch_size'])
                                           and loader['batch_size'] > 0):
            raise ConfigError(f'{key}.batch_size must be a positive int, got '
                              f'{_shown(loader["batch_size"])}')
        if 'num_workers' in loader and not (_is_int(loader['num_workers'])
                                            and loader['num_workers'] >= 0):
            raise ConfigError(f'{key}.num_workers must be an int >= 0, got '
                              f'{_shown(loader["num_workers"])}')


def check_schedule(cfg) -> None:
    """``train_cfg.max_epochs`` / ``max_iters`` and ``val_interval`` positive ints."""
    train_cfg = cfg.get('train_cfg')
    if not isinstance(train_cfg, dict):
        return
    for name in ('max_epochs', 'max_iters', 'val_interval'):
        if name in train_cfg and not (_is_int(train_cfg[name]) and train_cfg[name] > 0):
            raise ConfigError(f'train_cfg.{name} must be a positive int, got '
                              f'{_shown(train_cfg[name])}: '
                              + ('nothing would be trained' if name != 'val_interval'
                                 else 'validate every N epochs or iterations, N >= 1'))


def _numeric_default(default) -> bool:
    if isinstance(default, (tuple, list)):
        return bool(default) and all(_is_number(v) for v in default)
    return _is_number(default)


def check_optimizer(cfg) -> None:
    """``optim_wrapper.optimizer``: a registered optimizer type, only its arguments,
    and numbers >= 0 where the optimizer's default is a number (``lr``,
    ``momentum``, ``weight_decay``, ``betas``, ...)."""
    wrapper = cfg.get('optim_wrapper')
    optimizer = wrapper.get('optimizer') if isinstance(wrapper, dict) else None
    if not isinstance(optimizer, dict) or not isinstance(optimizer.get('type'), str):
        return
    key = 'optim_wrapper.optimizer'
    cls = OPTIMIZERS.get(optimizer['type'])
    if cls is None:
        raise ConfigError(f"{key}.type: {optimizer['type']!r} is not a registered "
                          f"optimizer{closest_registered(optimizer['type'], OPTIMIZERS)}")
    if not inspect.isclass(cls):
        return
    check_arguments(cls, optimizer, where=key, ignore=('type', 'params'))
    params = inspect.signature(cls.__init__).parameters
    for name, value in optimizer.items():
        param = params.get(name)
        if param is None or not _numeric_default(param.default):
            continue
        values = value if isinstance(value, (tuple, list)) else [value]
        if not values or not all(_is_number(v) and v >= 0 for v in values):
            raise ConfigError(f'{key}.{name} must be '
                              + ('numbers' if isinstance(param.default, (tuple, list))
                                 else 'a number')
                              + f' >= 0 (default of {cls.__name__}: {param.default!r}), '
                              f'got {_shown(value)}')


def check_run_settings(cfg, training: bool = True) -> None:
    """The checks of this module that apply to a training (``training``) or a test."""
    if training:
        check_schedule(cfg)
        check_optimizer(cfg)
        check_dataloaders(cfg, ('train', 'val') if cfg.get('val_cfg') else ('train',))
    else:
        check_dataloaders(cfg, ('test',))
