"""The registry of built-in tasks and `load`, the one way in."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from gradsight.checks import MAX_SEED, check_int
from gradsight.data._common import standardize_inputs
from gradsight.data.adding import adding
from gradsight.data.copy_task import copy_task
from gradsight.data.digits import digits
from gradsight.data.mnist1d_task import mnist1d
from gradsight.data.sparse_features import sparse_features
from gradsight.data.spirals import spirals
from gradsight.data.task import Task
from gradsight.data.teacher import teacher
from gradsight.errors import InputError

# name -> generator(seed=..., **options) returning a Task with raw (unstandardized) inputs.
TASKS: dict[str, Callable[..., Task]] = {
    "adding": adding,
    "copy": copy_task,
    "digits": digits,
    "mnist1d": mnist1d,
    "sparse_features": sparse_features,
    "spirals": spirals,
    "teacher": teacher,
}


def names() -> list[str]:
    """The registered task names, sorted."""
    return sorted(TASKS)


def load(name: str, seed: int = 0, standardize: bool = True, **options: Any) -> Task:
    """Generate a built-in task, deterministically for `seed`.

    No global random state is read or changed. With `standardize`, every input feature is
    shifted and scaled by the train split's mean and std (per feature; per channel over N and
    T for sequences) on both splits; without it the raw inputs are kept, which is what shows
    the effect of non-zero-centred inputs. `Task.options` records every option used,
    defaults included, with `seed` and `standardize`.

    Args:
        name: A registered task name, see `names()`.
        seed: Non-negative seed of everything random in the task.
        standardize: Standardize the inputs with train-split statistics.
        **options: Task options, the keyword arguments of the generator `TASKS[name]`.

    Returns:
        The Task.

    Raises:
        InputError: For an unknown name or option, or a bad value.

    Example:
        >>> task = load("adding", seed=1, length=20, n_train=100, n_test=10)
        >>> task.x_train.shape
        torch.Size([100, 20, 2])
    """
    if name not in TASKS:
        raise InputError(f"unknown task {name!r}; valid names: {', '.join(names())}")
    seed = check_int("seed", seed, maximum=MAX_SEED)
    if not isinstance(standardize, bool):
        raise InputError(f"standardize must be a bool, got {standardize!r}")
    generator = TASKS[name]
    params = {p: v for p, v in inspect.signature(generator).parameters.items() if p != "seed"}
    unknown = sorted(set(options) - set(params))
    if unknown:
        allowed = ", ".join(params) or "none"
        raise InputError(
            f"unknown option {unknown[0]!r} for task {name!r}; "
            f"allowed options: {allowed} (and seed, standardize)"
        )
    used = {p: options.get(p, v.default) for p, v in params.items()}
    missing = [p for p, value in used.items() if value is inspect.Parameter.empty]
    if missing:
        raise InputError(f"task {name!r} needs the option {missing[0]!r}")
    task = generator(seed=seed, **used)
    x_train, x_test = task.x_train, task.x_test
    if standardize:
        x_train, x_test = standardize_inputs(x_train, x_test)
    return dataclasses.replace(
        task,
        x_train=x_train,
        x_test=x_test,
        options={"seed": seed, "standardize": standardize, **used},
    )
