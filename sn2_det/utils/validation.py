"""Argument checks that name the offending key and the valid choices."""
import difflib
import inspect
from typing import Any, Iterable, List, Optional, Sequence

from .errors import ConfigError, UnknownArgumentError


def closest(name: str, choices: Sequence[str], n: int = 1, cutoff: float = 0.5) -> list:
    """The ``n`` choices most like ``name`` (difflib), for "did you mean" hints."""
    return difflib.get_close_matches(name, list(choices), n=n, cutoff=cutoff)


def closest_registered(name: str, registry, cutoff: float = 0.5) -> str:
    """``'; closest registered: A, B, C'`` (the three names of ``registry`` and its
    parents most like ``name``), or '' when none is close: the hint of an unknown
    type's error."""
    names = set()
    while registry is not None:
        names |= set(registry.module_dict)
        registry = registry.parent
    close = closest(name, sorted(names), n=3, cutoff=cutoff)
    return f'; closest registered: {", ".join(close)}' if close else ''


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices`` (bools never match ints)."""
    if isinstance(value, bool) or value not in choices:
        raise ConfigError(f'{name} must be one of {tuple(choices)}, got {value!r}')


def check_bool(name: str, value: Any) -> None:
    """Raise ConfigError unless ``value`` is True or False."""
    if not isinstance(value, bool):
        raise ConfigError(f'{name} must be True or False, got {value!r} '
                          f'({type(value).__name__})')


def check_out_indices(out_indices: Any, choices: Sequence[int]) -> tuple:
    """A backbone's ``out_indices``: an int or a non-empty sequence of distinct choices."""
    if isinstance(out_indices, int) and not isinstance(out_indices, bool):
        out_indices = (out_indices,)
    if (not isinstance(out_indices, (tuple, list)) or not out_indices
            or len(set(out_indices)) != len(out_indices)):
        raise ConfigError(f'out_indices must be a non-empty sequence of distinct indices '
                          f'from {tuple(choices)}, got {out_indices!r}')
    for index in out_indices:
        check_choice('out_indices entry', index, choices)
    return tuple(out_indices)


def constructor_arguments(cls) -> Optional[List[str]]:
    """The keyword arguments ``cls(...)`` takes: its ``__init__``'s, and while that
    passes ``**kwargs`` on, its bases' (up to ``torch.nn.Module``); None when an
    ``__init__`` takes ``**kwargs`` and no base names them."""
    import torch.nn as nn
    names: List[str] = []
    for klass in inspect.getmro(cls):
        if klass in (nn.Module, object):
            return names
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):  # no signature to read: accept every key
            return None
        names += [name for name, p in list(params.items())[1:]
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                  and name not in names]
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            return names
    return None


def check_arguments(cls, keys: Iterable[str], where: str = '',
                    ignore: Sequence[str] = ('type', '_scope_')) -> None:
    """Raise UnknownArgumentError when ``keys`` (of a config node ``where``, e.g.
    ``'model.backbone'``) holds one that ``cls`` takes no argument for, naming it,
    the closest valid one and all valid ones (:func:`constructor_arguments`)."""
    valid = constructor_arguments(cls) if inspect.isclass(cls) else None
    if valid is None:
        return
    valid = [name for name in valid if name not in ignore]
    unknown = [key for key in keys if key not in valid and key not in ignore]
    if unknown:
        close = closest(unknown[0], valid)
        hint = f" (did you mean '{close[0]}'?)" if close else ''
        prefix = f'{where}.{unknown[0]}: ' if where else ''
        raise UnknownArgumentError(f'{prefix}{cls.__name__} has no argument '
                                   f'{", ".join(map(repr, unknown))}{hint}; its arguments '
                                   f'are {", ".join(valid)}')
