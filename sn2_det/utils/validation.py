"""Argument checks that name the offending key and the valid choices."""
from typing import Any, Sequence


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    """Raise ValueError unless ``value`` is one of ``choices`` (bools never match ints)."""
    if isinstance(value, bool) or value not in choices:
        raise ValueError(f'{name} must be one of {tuple(choices)}, got {value!r}')


def check_bool(name: str, value: Any) -> None:
    """Raise ValueError unless ``value`` is True or False."""
    if not isinstance(value, bool):
        raise ValueError(f'{name} must be True or False, got {value!r} '
                         f'({type(value).__name__})')
