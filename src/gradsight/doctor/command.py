"""`gradsight doctor --model pkg.module:build_fn --task digits`: the CLI's plain function.

`doctor_command` returns the exit status (0, or 2 with one line on stderr for bad input), so
the typer command in cli.py only forwards its options.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from gradsight.data.task import Task

# Exit status for bad input, as the main CLI's `fail`.
BAD_INPUT = 2


class BadInput(Exception):
    """A one-line message about the command's input."""


def load_object(spec: str, what: str) -> Callable[..., Any]:
    """The callable named by "pkg.module:name".

    Raises:
        BadInput: If the spec is malformed, the module cannot be imported or has no such name.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise BadInput(f"{what} must look like pkg.module:function, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # any import-time failure of the user's module is bad input
        raise BadInput(f"cannot import {module_name!r} for {what}: {error}") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise BadInput(f"{module_name!r} has no {attr!r} for {what}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise BadInput(f"{what} {spec!r} is a {type(obj).__name__}, not a callable")
    return obj


def load_task(spec: str, seed: int = 0) -> Task:
    """A built-in task by name, or a `Task` returned by "pkg.module:data_fn"."""
    from gradsight.data import load, names

    if ":" not in spec:
        if spec not in names():
            raise BadInput(f"unknown task {spec!r}; choose one of: {', '.join(names())}")
        return load(spec, seed=seed)
    task = load_object(spec, "--task")()
    if not isinstance(task, Task):
        raise BadInput(f"--task {spec!r} returned {type(task).__name__}, not a gs.data.Task")
    return task


def load_factory(spec: str) -> Callable[[int], nn.Module]:
    """seed -> model from "pkg.module:build_fn"; the factory is called once to check it."""
    factory = load_object(spec, "--model")
    try:
        takes_seed = "seed" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        takes_seed = False

    def build(seed: int) -> nn.Module:
        return factory(seed=seed) if takes_seed else factory()

    try:
        model = build(0)
    except Exception as error:  # the user's factory failing is bad input, said in one line
        raise BadInput(f"--model {spec!r} failed: {type(error).__name__}: {error}") from None
    if not isinstance(model, nn.Module):
        raise BadInput(f"--model {spec!r} returned {type(model).__name__}, not an nn.Module")
    return build


def doctor_command(
    model: str,
    task: str = "digits",
    *,
    optimizer: str = "sgd",
    lr: float | None = None,
    steps: int = 300,
    seeds: int = 3,
    batch_size: int = 64,
    remedies: Sequence[str] = (),
    progress: bool = True,
) -> int:
    """Run the doctor on a user's model factory and print its prescription.

    Args:
        model: "pkg.module:build_fn"; build_fn(seed=...) or build_fn() returns an nn.Module.
        task: A built-in task name, or "pkg.module:data_fn" returning a `gs.data.Task`.
        optimizer, lr, steps, seeds, batch_size: The baseline's training settings and budget.
        remedies: Remedy names to try ("a+b" combines); empty means "auto".
        progress: Show a progress bar over the runs.

    Returns:
        0, or `BAD_INPUT` after one line on stderr.
    """
    from gradsight.doctor.core import doctor

    # A console script's sys.path lacks the working directory, where users' modules live.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        build = load_factory(model)
        data = load_task(task)
        prescription = doctor(
            build,
            data,
            optimizer=optimizer,
            lr=lr,
            steps=steps,
            seeds=seeds,
            batch_size=batch_size,
            remedies=list(remedies) or "auto",
            progress=progress,
        )
    except (BadInput, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT
    print(prescription.summary())
    return 0
