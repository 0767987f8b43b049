"""Argument checks that name the offending key and the valid choices."""
import difflib
from typing import Any, Sequence

from .errors import ConfigError


def closest(name: str, choices: Sequence[str], n: int = 1, cutoff: float = 0.5) -> list:
    """The ``n`` choices most like ``name`` (difflib), for "did you mean" hints."""
    return difflib.get_close_matches(name, list(choices), n=n, cutoff=cutoff)


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
