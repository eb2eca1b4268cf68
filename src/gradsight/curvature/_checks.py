"""One-line argument checks of the curvature tools; each error names the bad value."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gradsight.errors import InputError


def check_int(name: str, value: Any, minimum: int) -> int:
    """Returns `value` if it is an int (not a bool) >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def check_positive(name: str, value: Any) -> float:
    """Returns `value` as a float if it is a finite real number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e308:
        raise InputError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Returns `value` if it is one of `choices`."""
    names = list(choices)
    if value not in names:
        raise InputError(f"{name} must be one of {', '.join(map(repr, names))}, got {value!r}")
    return value
