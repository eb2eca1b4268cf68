"""Run configs (TOML): validated against the very functions they call.

```toml
[task]                # gs.data.load(name, seed=..., standardize=..., **options)
name = "digits"
[model]               # gs.models.<kind>(...); input and output sizes come from the task
kind = "mlp"
depth = 10
activation = "sigmoid"
[train]               # gs.fit(...) keyword arguments
optimizer = "sgd"
lr = 0.1
steps = 1000
batch_size = 64
```

Each section is checked by a pydantic model made from the signature of the function it feeds
(`signature_model`), so a config accepts exactly what the Python API accepts: a wrong key,
type or value is a `ConfigError` with one line naming the key and what is allowed.
"""

from __future__ import annotations

import inspect
import math
import os
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from torch import nn

from gradsight import data, models
from gradsight.data.task import Task
from gradsight.errors import InputError
from gradsight.example_configs import example_names, resolve_config
from gradsight.telemetry.watch import watch
from gradsight.train import SCHEDULES, build_optimizer, build_schedule, fit
from gradsight.train.fit import check_device, run_length
from gradsight.train.schedules import needs_model

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SECTIONS = ("name", "description", "task", "model", "train")
# Arguments a config does not set: the model's sizes come from the task, the rest from the CLI.
MODEL_SIZE_ARGS = frozenset(
    {"in_features", "out_features", "in_shape", "input_size", "output_size", "sequence_output"}
)
FIT_RUNTIME_ARGS = frozenset({"model", "task", "callbacks", "run_dir", "progress", "config"})
# gs.watch arguments that fit sets itself (or that only Python can give): not a config's to set.
WATCH_RUNTIME_ARGS = frozenset(
    {
        "model",
        "optimizer",
        "history",
        "on_nonfinite",
        "flush_every",
        "run_dir",
        "sinks",
        "curvature_batch",
        "curvature_loss_fn",
    }
)
# Schedule arguments that fit passes: the optimizer, the run length, and hessian's probe.
SCHEDULE_RUNTIME_ARGS = frozenset({"optimizer", "total_steps", "model", "loss_fn", "data"})
WARMUP_ARGS = {"warmup_steps": (int | None, None), "warmup_fraction": (float | None, None)}


class ConfigError(InputError):
    """A config that cannot be run; the message is one line naming the key."""


@dataclass
class Prepared:
    """A validated config, ready to train: `gs.fit(model, task, **fit_args)`."""

    name: str
    config: dict[str, Any]
    task: Task
    model: nn.Module
    fit_args: dict[str, Any]


def signature_model(
    fn: Callable[..., Any],
    exclude: frozenset[str] = frozenset(),
    extra: dict[str, tuple[Any, Any]] | None = None,
) -> type[BaseModel]:
    """A pydantic model whose fields are `fn`'s keyword arguments, with their types and defaults.

    Unknown keys are rejected (`extra="forbid"`), so the model validates exactly the
    arguments `fn` takes, plus the `extra` fields given as `name: (type, default)`.
    """
    hints = typing.get_type_hints(fn)
    fields: dict[str, Any] = dict(extra or {})
    for param in inspect.signature(fn).parameters.values():
        if param.name in exclude or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (hints.get(param.name, Any), default)
    return create_model(
        f"{fn.__name__}_args",
        __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
        **fields,
    )


def _validate(
    section: str,
    fn: Callable[..., Any],
    values: dict[str, Any],
    exclude: frozenset[str] = frozenset(),
    extra: dict[str, tuple[Any, Any]] | None = None,
) -> dict[str, Any]:
    schema = signature_model(fn, exclude, extra)
    try:
        return schema.model_validate(values).model_dump(exclude_unset=True)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join([section, *map(str, first["loc"])])
        if first["type"] == "extra_forbidden":
            allowed = ", ".join(schema.model_fields)
            raise ConfigError(f"{key}: unknown key; allowed: {allowed}") from None
        shown = f" (got {first['input']!r})" if first["type"] != "missing" else ""
        raise ConfigError(f"{key}: {first['msg']}{shown}") from None


def build_model(kind: str, task: Task, **options: Any) -> nn.Module:
    """Build a gradsight model whose input and output fit `task`.

    mlp takes the flattened input; cnn and resnet the input shape; rnn the feature size of
    (T, features) inputs, with per-step outputs when the targets are sequences.
    """
    if kind not in models.MODELS:
        raise InputError(f"unknown model kind {kind!r}; choose one of: {', '.join(models.MODELS)}")
    builder = models.MODELS[kind]
    if kind == "mlp":
        return builder(math.prod(task.input_shape), task.output_size, **options)
    if kind == "rnn":
        if len(task.input_shape) != 2:
            raise InputError(
                f"rnn needs (time, features) inputs; {task.name} has {task.input_shape}"
            )
        sequence_output = task.y_train.dim() == 2 and task.loss == "cross_entropy"
        return builder(
            task.input_shape[-1],
            output_size=task.output_size,
            sequence_output=sequence_output,
            **options,
        )
    return builder(task.input_shape, task.output_size, **options)


def set_value(config: dict[str, Any], assignment: str) -> None:
    """Apply one `--set section.key=value` override; the value is read as TOML, else a string."""
    key, sep, text = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {assignment!r}: expected key=value, e.g. train.lr=0.01")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    *path, last = key.strip().split(".")
    node = config
    for part in path:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {part} is not a section")
    node[last] = value


def load_config(path: str | Path, overrides: list[str] = ()) -> dict[str, Any]:
    """Read a TOML config (a file, or a packaged example by name) and apply `--set` overrides."""
    source = resolve_config(path)
    if source is None:
        bare = Path(path).parent == Path(".")  # could have named an example
        shipped = f" (nor a packaged example: {', '.join(example_names())})" if bare else ""
        raise ConfigError(f"config file not found: {path}{shipped}")
    try:
        config = tomllib.loads(source.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8"
        ) from None
    config.setdefault("name", Path(source.name).stem)
    for assignment in overrides:
        set_value(config, assignment)
    return config


def prepare(config: dict[str, Any]) -> Prepared:
    """Validate a config and build its task and model.

    Raises:
        ConfigError: One line naming the key and what is allowed.
    """
    unknown = [key for key in config if key not in SECTIONS]
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section; allowed: {', '.join(SECTIONS)}")
    name = check_run_name(config.get("name", "run"))
    sections = {}
    for section in ("task", "model", "train"):
        value = config.get(section, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{section}: must be a table ([{section}])")
        sections[section] = dict(value)

    task_values = sections["task"]
    task_name = task_values.pop("name", None)
    if not isinstance(task_name, str) or task_name not in data.TASKS:
        raise ConfigError(
            f"task.name: {task_name!r} is not a task; choose one of: {', '.join(data.TASKS)}"
        )
    task_args = _validate(
        "task", data.TASKS[task_name], task_values, extra={"standardize": (bool, True)}
    )
    try:
        task = data.load(task_name, **task_args)
    except ValueError as error:
        raise ConfigError(f"task: {error}") from None

    model_values = sections["model"]
    kind = model_values.pop("kind", "mlp")
    if not isinstance(kind, str) or kind not in models.MODELS:
        raise ConfigError(
            f"model.kind: {kind!r} is not a model; choose one of: {', '.join(models.MODELS)}"
        )
    model_args = _validate("model", models.MODELS[kind], model_values, MODEL_SIZE_ARGS)
    try:
        model = build_model(kind, task, **model_args)
    except ValueError as error:
        raise ConfigError(f"model: {error}") from None
    _check_model_fits_task(kind, model, task)

    fit_args = _validate("train", fit, sections["train"], FIT_RUNTIME_ARGS)
    if isinstance(fit_args.get("watch"), dict):
        fit_args["watch"] = _validate("train.watch", watch, fit_args["watch"], WATCH_RUNTIME_ARGS)
    if "device" in fit_args:
        try:
            check_device(fit_args["device"])
        except ValueError as error:
            raise ConfigError(f"train.device: {error}") from None
    _check_optimizer_and_schedule(fit_args, task)
    return Prepared(name, config, task, model, fit_args)


def _check_model_fits_task(kind: str, model: nn.Module, task: Task) -> None:
    """One forward pass and loss on two training examples (eval mode, no gradient, the RNG
    state kept): a model whose shapes do not fit the task fails here, before any run directory
    exists, instead of at its first training step."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng():
            task.loss_fn(model(task.x_train[:2]), task.y_train[:2])
    except (RuntimeError, ValueError, IndexError) as error:
        first = str(error).strip().splitlines()[0]
        hint = "; sequences take kind = 'rnn'" if len(task.input_shape) == 2 else ""
        raise ConfigError(
            f"model: kind {kind!r} does not fit task {task.name!r} (inputs "
            f"{tuple(task.input_shape)}): {first}{hint}"
        ) from None
    finally:
        model.train(was_training)


def check_run_name(name: Any) -> str:
    """`name` if it can name a folder under `runs/`: a path would put the run elsewhere.

    Raises:
        ConfigError: Not a string, empty, `.` or `..`, or holding a path separator.
    """
    separators = {"/", "\\", os.sep, os.altsep or "/"}
    if (
        not isinstance(name, str)
        or not name.strip()
        or name in (".", "..")
        or any(sep in name for sep in separators)
        or "\0" in name
    ):
        raise ConfigError(
            f"name: {name!r} is not a run name (no path separators, '.' or '..'); "
            "use --run-dir to choose where the run goes"
        )
    return name


def _check_optimizer_and_schedule(fit_args: dict[str, Any], task: Task) -> None:
    """Build the optimizer and schedule on a throwaway parameter, as fit will build them.

    Wrong schedule options otherwise surface inside torch's scheduler mid-run; here they are
    type-checked against the schedule's signature and then built once.
    """
    schedule = fit_args.get("schedule", "constant")
    if schedule not in SCHEDULES:
        raise ConfigError(
            f"train.schedule: {schedule!r} is not a schedule; choose one of: {', '.join(SCHEDULES)}"
        )
    factory = SCHEDULES[schedule]
    options = dict(fit_args.get("schedule_options") or {})
    named = set(inspect.signature(factory).parameters) | set(WARMUP_ARGS)
    takes_more = any(
        p.kind is p.VAR_KEYWORD for p in inspect.signature(factory).parameters.values()
    )
    # A factory with **options passes them on: only its named arguments are checked here.
    checked = {k: v for k, v in options.items() if k in named} if takes_more else options
    options.update(
        _validate(
            "train.schedule_options", factory, checked, SCHEDULE_RUNTIME_ARGS, dict(WARMUP_ARGS)
        )
    )
    if "schedule_options" in fit_args:
        fit_args["schedule_options"] = options
    try:
        steps = run_length(
            fit_args.get("steps"), fit_args.get("epochs"), len(task.x_train),
            fit_args.get("batch_size"),
        )  # fmt: skip
    except ValueError as error:
        raise ConfigError(f"train: {error}") from None
    try:
        optimizer = build_optimizer(
            fit_args.get("optimizer", "sgd"),
            [nn.Parameter(torch.zeros(1))],
            fit_args.get("lr"),
            momentum=fit_args.get("momentum", 0.0),
            nesterov=fit_args.get("nesterov", False),
            weight_decay=fit_args.get("weight_decay", 0.0),
            **(fit_args.get("optimizer_options") or {}),
        )
    except ValueError as error:
        raise ConfigError(f"train: {error}") from None
    if needs_model(schedule):  # needs the model and data; its options were type-checked above
        return
    try:
        build_schedule(schedule, optimizer, max(1, steps), **options)
    except (ValueError, TypeError, ArithmeticError) as error:
        raise ConfigError(f"train.schedule_options: {error}") from None
