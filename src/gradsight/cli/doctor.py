"""`gradsight doctor CONFIG.toml` or `gradsight doctor --model pkg.module:build_fn --task digits`:
the CLI's plain function.

`doctor_command` raises `InputError` for bad input (the command line's error boundary prints
it as one line), so the typer command in `cli.commands` only forwards its options.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from torch import nn

from gradsight.config import build_model, load_config, prepare
from gradsight.data.task import Task
from gradsight.errors import InputError

# The budget when neither a config nor an option sets it (gs.doctor's defaults).
DEFAULT_STEPS, DEFAULT_BATCH_SIZE = 300, 64
# A config's [train] keys the doctor sets itself (every run's seed) or has no use for.
NOT_FORWARDED = frozenset({"seed", "eval_every"})


@dataclass
class Case:
    """What the doctor treats: a picklable seed -> model factory, the task, the baseline's
    `gs.doctor` keyword arguments, and the config it all came from (None for --model)."""

    build: Callable[..., nn.Module]
    task: Task
    train: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    source: str = ""
    ignored: tuple[str, ...] = ()


@contextmanager
def working_directory_importable() -> Iterator[None]:
    """The working directory on `sys.path` for the length of the block, as `python -m` puts it
    there: a console script's `sys.path` lacks it, and the user's `pkg.module:build` lives
    there. The doctor's worker processes (spawned) inherit the path while the block lasts, to
    import the same module by name; afterwards `sys.path` is as it was."""
    here = os.getcwd()
    if "" in sys.path or here in sys.path:
        yield
        return
    sys.path.insert(0, here)
    try:
        yield
    finally:
        sys.path.remove(here)


def load_object(spec: str, what: str) -> Callable[..., Any]:
    """The callable named by "pkg.module:name".

    Raises:
        InputError: If the spec is malformed, the module cannot be imported or has no such name.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise InputError(f"{what} must look like pkg.module:function, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # any import-time failure of the user's module is bad input
        raise InputError(f"cannot import {module_name!r} for {what}: {error}") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InputError(f"{module_name!r} has no {attr!r} for {what}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise InputError(f"{what} {spec!r} is a {type(obj).__name__}, not a callable")
    return obj


def load_task(spec: str, seed: int = 0) -> Task:
    """A built-in task by name, or a `Task` returned by "pkg.module:data_fn"."""
    from gradsight.data import load, names

    if ":" not in spec:
        if spec not in names():
            raise InputError(f"unknown task {spec!r}; choose one of: {', '.join(names())}")
        return load(spec, seed=seed)
    task = load_object(spec, "--task")()
    if not isinstance(task, Task):
        raise InputError(f"--task {spec!r} returned {type(task).__name__}, not a gs.data.Task")
    return task


def load_factory(spec: str) -> Callable[..., nn.Module]:
    """The factory named by "pkg.module:build_fn", called once (seed=0 if it takes a seed) to
    check that it builds an nn.Module; it is module-level, so worker processes import it."""
    factory = load_object(spec, "--model")
    try:
        takes_seed = "seed" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        takes_seed = False
    try:
        model = factory(seed=0) if takes_seed else factory()
    except Exception as error:  # the user's factory failing is bad input, said in one line
        raise InputError(f"--model {spec!r} failed: {type(error).__name__}: {error}") from None
    if not isinstance(model, nn.Module):
        raise InputError(f"--model {spec!r} returned {type(model).__name__}, not an nn.Module")
    return factory


def config_model(kind: str, task: Task, options: dict[str, Any], seed: int) -> nn.Module:
    """A config's model built for `seed` (a module-level function, so a partial pickles)."""
    return build_model(kind, task, **{**options, "seed": seed})


def from_config(path: str | Path, overrides: Sequence[str] = ()) -> Case:
    """The model factory, task and training settings of a `gradsight train` config.

    Raises:
        ConfigError: If the config does not validate (`gradsight.config.prepare`).
    """
    from gradsight.doctor.core import doctor

    config = load_config(path, list(overrides))
    prepared = prepare(config)
    options = dict(config.get("model") or {})
    kind = options.pop("kind", "mlp")
    accepted = set(inspect.signature(doctor).parameters)
    train = {k: v for k, v in prepared.fit_args.items() if k in accepted}
    ignored = sorted(set(prepared.fit_args) - set(train) - NOT_FORWARDED)
    build = partial(config_model, kind, prepared.task, options)
    return Case(build, prepared.task, train, config, str(path), tuple(ignored))


def _case(
    config: str | Path | None, model: str | None, task: str | None, overrides: Sequence[str]
) -> Case:
    if config is not None and model is not None:
        raise InputError("give a CONFIG.toml or --model, not both")
    if config is not None:
        if task is not None:
            raise InputError("--task goes with --model; a config names its task in [task]")
        return from_config(config, overrides)
    if model is None:
        raise InputError("give a CONFIG.toml or --model pkg.module:build_fn")
    if overrides:
        raise InputError("--set changes a config; give a CONFIG.toml")
    return Case(load_factory(model), load_task(task or "digits"), source=model)


def _executor(kind: str, workers: int, address: str | None):
    from gradsight.executor import Executor

    try:
        return Executor(kind, workers, address)
    except InputError as error:
        raise InputError(f"--executor/--workers/--address: {error}") from None


def doctor_command(
    config: str | Path | None = None,
    *,
    model: str | None = None,
    task: str | None = None,
    overrides: Sequence[str] = (),
    optimizer: str | None = None,
    lr: float | None = None,
    steps: int | None = None,
    seeds: int = 3,
    batch_size: int | None = None,
    remedies: Sequence[str] = (),
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
    run_dir: str | Path | None = None,
    progress: bool = True,
    json_output: bool = False,
) -> int:
    """Run the doctor on a config's model, or on a user's model factory, and print its
    prescription (for a config, also as a diff of the config) and its trials as a table.

    Args:
        config: A `gradsight train` TOML config: its model, task and [train] settings.
        model: Instead of a config, "pkg.module:build_fn"; build_fn(seed=...) or build_fn()
            returns an nn.Module.
        task: With `model`: a built-in task name, or "pkg.module:data_fn" returning a Task.
        overrides: "section.key=value" changes of the config (as `gradsight train --set`).
        optimizer, lr, steps, batch_size: Override the baseline's settings and budget (None
            keeps the config's, else gs.doctor's defaults).
        seeds: Seeds per remedy.
        remedies: Remedy names to try ("a+b" combines); empty means "auto".
        executor, workers, address: Where the runs go (`gradsight.executor.Executor`).
        run_dir: Also write run_dir/doctor.html and run_dir/prescription.json.
        progress: Show a progress bar over the runs (on stderr).
        json_output: Print the prescription as JSON (`page.record`, the content of
            prescription.json) and nothing else on stdout; the page's paths go to stderr.

    Returns:
        0 once the prescription is printed.

    Raises:
        InputError: A bad config, option or user module (the command line prints its one line).
        MissingPackageError, ConnectionError: For the ray executor, Ray is missing or does not
            answer at `address`.
    """
    from rich.console import Console

    from gradsight.cli.console import print_trials, to_json
    from gradsight.doctor import page
    from gradsight.doctor.config_diff import config_diffs
    from gradsight.doctor.core import doctor

    with working_directory_importable():
        given = {"optimizer": optimizer, "lr": lr, "steps": steps, "batch_size": batch_size}
        given = {k: v for k, v in given.items() if v is not None}
        runner = _executor(executor, workers, address)
        if run_dir is not None and Path(run_dir).exists() and not Path(run_dir).is_dir():
            raise InputError(f"--run-dir {run_dir} is a file, not a folder")
        sets = [*overrides, *(f"train.{k}={v!r}" for k, v in given.items())]
        case = _case(config, model, task, sets if config is not None else overrides)
        if case.ignored:
            unused = ", ".join(case.ignored)
            print(f"note: the doctor does not use [train] {unused}", file=sys.stderr)
        train = {"steps": DEFAULT_STEPS, "batch_size": DEFAULT_BATCH_SIZE, **case.train}
        prescription = doctor(
            case.build,
            case.task,
            **{**train, **given},
            seeds=seeds,
            remedies=list(remedies) or "auto",
            executor=runner,
            progress=progress,
        )
        diffs = None
        if case.config is not None:
            diffs = config_diffs(prescription, case.config, case.build(seed=0), case.task)
        written = ""
        if run_dir is not None:
            title = f"doctor: {Path(case.source).name}"
            path = page.write(
                prescription, run_dir, title=title, source=case.source, config_diffs=diffs
            )
            written = f"doctor page: {path}\nprescription: {path.parent / page.JSON_NAME}"
        if json_output:
            print(to_json(page.record(prescription, diffs)))
            if written:
                print(written, file=sys.stderr)
            return 0
        print(prescription.summary(table=False))
        if len(prescription.trials):
            print()
            print_trials(Console(), prescription)
        if diffs and prescription.best in diffs:
            print(_diff_text(prescription.best, diffs[prescription.best], case.source))
        if written:
            print(written)
        return 0


def _diff_text(name: str, lines: Sequence[str] | None, source: str) -> str:
    if lines is None:
        return f"\n{name} has no form as config keys: change the code as above."
    return "\n".join([f"\nAs a change of {source}:", *lines])
