"""One-line argument checks shared by every package; each error is an `InputError` that names
the argument, what is allowed and the value given."""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gradsight.errors import InputError


def check_choice(kind: str, value: Any, choices: Iterable[str]) -> str:
    """Returns `value` if it is one of `choices`, else raises an InputError listing them."""
    names = list(choices)
    if not isinstance(value, str) or value not in names:
        raise InputError(f"unknown {kind} {value!r}; choose one of: {', '.join(names)}")
    return value


def check_options(kind: str, name: str, options: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Raises an InputError naming the first option of `options` that is not in `allowed`."""
    valid = list(allowed)
    for key in options:
        if key not in valid:
            hint = ", ".join(valid) if valid else "none"
            raise InputError(f"unknown option {key!r} for {kind} {name!r}; valid options: {hint}")


def keyword_names(fn: Callable[..., Any], skip: Iterable[str] = ()) -> tuple[str, ...]:
    """Names of the arguments `fn` takes by keyword (not *args/**kwargs), less `skip`."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = inspect.signature(fn).parameters.values()
    return tuple(p.name for p in params if p.kind in kinds and p.name not in set(skip))


def check_int(name: str, value: Any, minimum: int = 0, maximum: int | None = None) -> int:
    """Returns `value` as an int if it is an integer (numpy's too, not a bool) >= `minimum`
    (and <= `maximum`, when given)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InputError(f"{name} must be an int >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise InputError(f"{name} must be an int <= {maximum:,}, got {value:,}")
    return int(value)


# torch.Generator.manual_seed takes a 64-bit integer.
MAX_SEED = 2**63 - 1


def check_number(name: str, value: Any) -> float:
    """Returns `value` as a float if it is a finite real number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise InputError(f"{name} must be a finite number, got {value!r}")
    if value in (float("inf"), float("-inf")):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_positive(name: str, value: Any) -> float:
    """Returns `value` as a float if it is a finite number > 0."""
    if check_number(name, value) <= 0:
        raise InputError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_options_dict(name: str, value: Any) -> dict[str, Any]:
    """Returns a copy of an optional options mapping ({} for None)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{name} must be a dict or None, got {value!r}")
    return dict(value)


def check_float(
    name: str,
    value: object,
    low: float = 0.0,
    high: float = math.inf,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> float:
    """`value` as a finite float between `low` and `high`; InputError naming it otherwise."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    v = float(value) if real else math.nan  # type: ignore[arg-type]
    above = low < v if open_low else low <= v
    below = v < high if open_high else v <= high
    if not (math.isfinite(v) and above and below):
        interval = f"{'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
        raise InputError(f"{name} must be a finite number in {interval}, got {value!r}")
    return v


# The most numbers a built-in task may generate: 2^28 float32 values are 1 GiB. A size beyond
# it is a typo, and torch would fail on it mid-way (out of memory, or an integer overflow).
MAX_ELEMENTS = 2**28


def check_elements(what: str, *dims: int) -> None:
    """Raises an InputError when a tensor of shape `dims` would hold more than MAX_ELEMENTS."""
    total = math.prod(dims)
    if total > MAX_ELEMENTS:
        shape = " x ".join(f"{d:,}" for d in dims)
        raise InputError(
            f"{what}: {shape} = {total:,} numbers, more than the {MAX_ELEMENTS:,} allowed "
            "(1 GiB of float32)"
        )
