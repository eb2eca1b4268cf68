"""`fit`: the one small training loop used by the CLI, the lab and the doctor."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
from torch import Tensor, nn

from gradsight.data.task import Task
from gradsight.errors import InputError
from gradsight.progress import ProgressBar
from gradsight.stop_signals import stops_deferred
from gradsight.telemetry.history import History
from gradsight.telemetry.run_dir import RunDir
from gradsight.telemetry.watch import Watch
from gradsight.train.batches import batches, steps_per_epoch
from gradsight.train.callbacks import Callback, FitState
from gradsight.train.fit_html import fit_result_html
from gradsight.train.optimizers import build_optimizer
from gradsight.train.schedules import build_schedule, needs_model

# Without per-layer statistics, losses reach the host (and the run directory) in blocks of
# this many steps: one sync per block.
LOG_BLOCK = 50
# Examples in the fixed batch on which the `hessian` schedule and the watch's curvature
# estimates (`watch={"curvature_every": N}`) measure the Hessian.
HESSIAN_PROBE = 512
# More steps than anyone means to run: a typo (an extra zero or three), rejected up front.
MAX_STEPS = 10**8
# `watch=False`: only loss, lr and non-finite losses are recorded.
NO_WATCH = {"every": 0, "updates_every": 0, "activations_every": 0}


@dataclass
class FitResult:
    """What `fit` returns.

    Attributes:
        history: Per-step `loss` and `lr`, `test/loss` and `test/<metric>` at evaluations,
            and with `watch` the per-layer statistics of `gs.watch`.
        metrics: Final `train_loss`, `train_<metric>`, `test_loss`, `test_<metric>`, `steps`
            (taken), `time_s` and `diverged` (a non-finite loss stopped training).
        run_dir: The run directory, when one was written.
    """

    history: History
    metrics: dict[str, Any]
    run_dir: Path | None = None

    def _repr_html_(self) -> str:
        """The notebook display: the final metrics, then the History's."""
        return fit_result_html(self)


def penalty(model: nn.Module, l1: float, l2: float) -> Tensor | None:
    """Loss penalty l1 * sum|w| + (l2 / 2) * sum w^2 over all trainable parameters.

    The l2 term's gradient is l2 * w, so with plain SGD it equals `weight_decay=l2`; with
    adaptive optimizers it does not (the penalty's gradient is rescaled; AdamW's decay is not).
    """
    if not (l1 or l2):
        return None
    params = [p for p in model.parameters() if p.requires_grad]
    total = torch.zeros((), device=params[0].device)
    if l1:
        total = total + l1 * sum(p.abs().sum() for p in params)
    if l2:
        total = total + 0.5 * l2 * sum(p.pow(2).sum() for p in params)
    return total


def _check(name: str, value: float | int | None, low: float, *, strict: bool = False) -> None:
    if value is not None and (value <= low if strict else value < low):
        raise InputError(f"{name} must be {'>' if strict else '>='} {low}, got {value}")


def run_length(steps: int | None, epochs: int | None, examples: int, batch_size: int | None) -> int:
    """The optimizer steps of a run: `epochs` passes over `examples`, else `steps` (500 when
    neither is given).

    Raises:
        InputError: Both steps and epochs, one of them or batch_size below 1, or more than
            MAX_STEPS steps.
    """
    if steps is not None and epochs is not None:
        raise InputError(f"give steps or epochs, not both (got steps={steps}, epochs={epochs})")
    _check("steps", steps, 1)
    _check("epochs", epochs, 1)
    _check("batch_size", batch_size, 1)
    if epochs is not None:
        steps = epochs * steps_per_epoch(examples, batch_size)
    steps = 500 if steps is None else steps
    if steps > MAX_STEPS:
        raise InputError(f"steps must be <= {MAX_STEPS:,}, got {steps:,}")
    return steps


def check_device(device: str) -> torch.device:
    """`device` as a torch.device, if this torch can train there.

    Raises:
        InputError: Not a device name, or a CUDA/MPS device this build or machine lacks.
    """
    try:
        place = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"device {device!r} is not a device (e.g. cpu, cuda, cuda:1)") from None
    if place.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (place.index or 0) >= count:
            raise InputError(f"device {device!r} is not available ({count} CUDA devices)")
    elif place.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {device!r} is not available")
    return place


def fit(
    model: nn.Module,
    task: Task,
    *,
    # the update rule
    optimizer: str = "sgd",
    lr: float | None = None,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    optimizer_options: dict[str, Any] | None = None,
    schedule: str = "constant",
    schedule_options: dict[str, Any] | None = None,
    # the budget
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    # regularisation and clipping
    l1: float = 0.0,
    l2: float = 0.0,
    clip_norm: float | None = None,
    clip_value: float | None = None,
    # evaluation and records
    eval_every: int | None = None,
    run_dir: str | Path | None = None,
    watch: bool | dict[str, Any] | None = None,
    sinks: Sequence[Any] = (),
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
    config: dict[str, Any] | None = None,
) -> FitResult:
    """Train `model` on `task` and evaluate it.

    Each step: forward on a batch, data loss + optional l1/l2 penalty, backward, optional
    clipping (by value, then by global norm, torch.nn.utils), optimizer step, schedule step.

    The options come in four groups, in this order: the update rule (optimizer to
    schedule_options), the budget (steps to device), regularisation and clipping (l1 to
    clip_value), and evaluation and records (eval_every to config).

    Args:
        model: Any nn.Module mapping the task's inputs to its outputs; trained in place.
        task: The problem (`gs.data.load`).
        optimizer: A name of `gradsight.train.OPTIMIZERS` (sgd, momentum, nag, adagrad,
            rmsprop, adam, adamw, lamb, adam_no_bias_correction, and those registered later).
        lr: Learning rate; None takes the optimizer's default.
        momentum: Momentum for sgd/rmsprop (momentum and nag default to 0.9).
        nesterov: Nesterov momentum for sgd.
        weight_decay: The optimizer's weight decay (decoupled only for adamw).
        optimizer_options: Other arguments of the torch.optim class (betas, eps, ...).
        schedule: constant, step, cosine, cyclic, one_cycle (see `schedules`) or hessian
            (lr = c / lambda_max on a fixed training batch, `gs.optim.HessianLR`).
        schedule_options: Arguments of the schedule (gamma, cycles, ...).
        steps: Optimizer steps; give this or `epochs` (default 500 steps).
        epochs: Passes over the training set, converted to steps.
        batch_size: Examples per step; None is full-batch gradient descent.
        seed: Seeds batch order and the RNG used during training (dropout); the global RNG
            state is restored afterwards. The model's initial weights are the caller's.
        device: Where to train.
        l1: Weight of the loss penalty l1 * sum|w|.
        l2: Weight of the loss penalty (l2 / 2) * sum w^2 (see `penalty`).
        clip_norm: Clip the global gradient norm to this value.
        clip_value: Clip each gradient element to [-clip_value, clip_value].
        eval_every: Evaluate on the test split every this many steps (and always at the end).
        run_dir: Write run.json and metric parts here (see `RunDir`).
        watch: Record per-layer statistics with `gs.watch`: True for its defaults, a dict of
            its options (every, updates_every, activations_every, ...), False for none; None
            (the default) watches when there is a run directory. Loss, lr and non-finite
            losses are always recorded; a non-finite loss or gradient stops training.
        sinks: Writers fed every recorded row as it is logged, with or without `watch`
            (`gradsight.telemetry.sink.Sink`: `WandbSink`, `MlflowSink`, ...); closed
            when training ends.
        callbacks: `Callback` objects called at start, after each step, at evaluations, at end.
        progress: Show a progress bar (on a terminal or in a Jupyter notebook).
        config: What to store as the run's config in run.json (default: these arguments).
    Returns:
        A `FitResult`.
    """
    steps = run_length(steps, epochs, len(task.x_train), batch_size)
    _check("eval_every", eval_every, 1)
    _check("l1", l1, 0)
    _check("l2", l2, 0)
    _check("clip_norm", clip_norm, 0, strict=True)
    _check("clip_value", clip_value, 0, strict=True)
    if not any(p.requires_grad for p in model.parameters()):
        raise InputError("the model has no trainable parameters")
    check_device(device)
    if batch_size is not None and batch_size > len(task.x_train):
        warnings.warn(
            f"batch_size {batch_size} is above the {len(task.x_train)} training examples: "
            f"every step takes all {len(task.x_train)} (full-batch gradient descent)",
            stacklevel=2,
        )

    model.to(device)
    task = task.to(device)
    opt = build_optimizer(
        optimizer,
        model.parameters(),
        lr,
        momentum=momentum,
        nesterov=nesterov,
        weight_decay=weight_decay,
        **(optimizer_options or {}),
    )
    options = dict(schedule_options or {})
    if needs_model(schedule):  # e.g. HessianLR: the model, the loss and a fixed probe batch
        probe = _probe_batch(task, batch_size)
        options = {"model": model, "loss_fn": task.loss_fn, "data": probe, **options}
    scheduler = build_schedule(schedule, opt, steps, **options)
    if config is None:
        config = {
            "model": type(model).__name__,
            "task": {"name": task.name, **task.options},
            "optimizer": optimizer,
            "lr": opt.param_groups[0]["lr"],
            "momentum": momentum,
            "nesterov": nesterov,
            "weight_decay": weight_decay,
            "l1": l1,
            "l2": l2,
            "batch_size": batch_size,
            "steps": steps,
            "schedule": schedule,
            "clip_norm": clip_norm,
            "clip_value": clip_value,
            "seed": seed,
        }
    if watch is None:
        watch = run_dir is not None
    watch_options = {} if watch is True else dict(NO_WATCH if watch is False else watch)
    if sinks:
        watch_options["sinks"] = (*watch_options.get("sinks", ()), *sinks)
    if watch_options.get("curvature_every") and "curvature_batch" not in watch_options:
        probe = _probe_batch(task, batch_size)
        watch_options.update(curvature_batch=probe, curvature_loss_fn=task.loss_fn)
    history = History()
    # The watch first: bad watch options must not leave a run directory behind.
    monitor = Watch(
        model, opt, history=history, on_nonfinite="stop", flush_every=LOG_BLOCK, **watch_options
    )
    with ExitStack() as stack:
        # A stop while the run directory is made is delivered inside `running()`, which
        # records it; the watch is closed however the run ends.
        stack.callback(monitor.close, "interrupted")
        with stops_deferred():
            run = RunDir(run_dir, config, seed) if run_dir is not None else None
            if run is not None:
                stack.enter_context(run.running())
        history.metrics_dir = run.metrics_dir if run else None
        state = FitState(model=model, optimizer=opt, task=task, history=history, watch=monitor)
        loop = _Loop(state, scheduler, batch_size, seed, l1, l2, clip_norm, clip_value, eval_every)
        device_obj = torch.device(device)
        rng_devices = [device_obj.index or 0] if device_obj.type == "cuda" else []
        started = time.perf_counter()
        stack.enter_context(torch.random.fork_rng(devices=rng_devices))
        torch.manual_seed(seed)
        loop.run(steps, callbacks, progress)
        metrics = loop.final_metrics(time.perf_counter() - started)
        history.flush()
        if run is not None:
            run.finish("finished", metrics=metrics, meta=history.meta)
    return FitResult(history, metrics, run.path if run else None)


def _probe_batch(task: Task, batch_size: int | None) -> tuple[Tensor, Tensor]:
    """The fixed training batch on which curvature is measured (at most HESSIAN_PROBE)."""
    x, y = task.split("train")
    n = min(len(x), batch_size or len(x), HESSIAN_PROBE)
    return x[:n], y[:n]


# The training bar: steps done, the latest loss, the time left.
BAR_COLUMNS = (
    TextColumn("[bold]training"),
    BarColumn(),
    TextColumn("{task.completed}/{task.total} steps"),
    TextColumn("loss {task.fields[loss]:.4g}"),
    TimeRemainingColumn(),
)


class _Loop:
    """The training loop's state and steps (kept apart from `fit`'s argument handling)."""

    def __init__(
        self,
        state: FitState,
        scheduler: Any,
        batch_size: int | None,
        seed: int,
        l1: float,
        l2: float,
        clip_norm: float | None,
        clip_value: float | None,
        eval_every: int | None,
    ) -> None:
        self.state = state
        self.scheduler = scheduler
        x, y = state.task.split("train")
        self.batches = batches(x, y, batch_size, seed)
        self.l1, self.l2 = l1, l2
        self.clip_norm, self.clip_value = clip_norm, clip_value
        self.eval_every = eval_every
        self.steps_taken = 0

    def run(self, steps: int, callbacks: Sequence[Callback], progress: bool) -> None:
        state, watch = self.state, self.state.watch
        state.model.train()
        for callback in callbacks:
            callback.on_fit_start(state)
        try:
            with ProgressBar(*BAR_COLUMNS, total=steps, enabled=progress, loss=math.nan) as bar:
                for step in range(steps):
                    state.step, state.loss = step, self.train_step()
                    watch.log(loss=state.loss)
                    self.steps_taken = step + 1
                    for callback in callbacks:
                        callback.on_step_end(state)
                    if (step + 1) % LOG_BLOCK == 0:
                        bar.update(step + 1, loss=watch.latest.get("loss", math.nan))
                    # Diverged training has nothing more to teach; later steps would be NaN too.
                    if watch.stopped or state.stop:
                        break
                    if self.eval_every and (step + 1) % self.eval_every == 0 and step + 1 < steps:
                        self.evaluate(callbacks)
                bar.update(self.steps_taken, loss=float(state.loss))  # a notebook's bar stays
        finally:
            watch.close()
            for callback in callbacks:
                callback.on_fit_end(state)

    def train_step(self) -> Tensor:
        state = self.state
        x, y = next(self.batches)
        loss = state.task.loss_fn(state.model(x), y)
        extra = penalty(state.model, self.l1, self.l2)
        objective = loss if extra is None else loss + extra
        state.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        if self.clip_value is not None:  # both skip parameters without a gradient
            torch.nn.utils.clip_grad_value_(state.model.parameters(), self.clip_value)
        if self.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(state.model.parameters(), self.clip_norm)
        state.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss.detach()

    def evaluate(self, callbacks: Sequence[Callback]) -> dict[str, float]:
        state = self.state
        metrics = state.task.evaluate(state.model, "test")
        for name, value in metrics.items():
            state.history.log(state.step, f"test/{name}", value)
        for callback in callbacks:
            callback.on_eval(state, metrics)
        return metrics

    def final_metrics(self, seconds: float) -> dict[str, Any]:
        task, model = self.state.task, self.state.model
        train = task.evaluate(model, "train")
        test = self.evaluate(())
        return {
            **{f"train_{k}": v for k, v in train.items()},
            **{f"test_{k}": v for k, v in test.items()},
            "steps": self.steps_taken,
            "time_s": round(seconds, 3),
            "diverged": self.state.watch.nonfinite is not None,
        }
