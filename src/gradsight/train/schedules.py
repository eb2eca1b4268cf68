"""Learning-rate schedules by name, all from torch.optim.lr_scheduler, stepped once per step.

- `constant`: lr throughout.
- `step`: lr * gamma^(k) after every `step_size` steps (default: a tenth after each third).
- `cosine`: lr * (1 + cos(pi * t / T)) / 2 (Loshchilov & Hutter 2017, without restarts).
- `cyclic`: triangular cycles between `base_fraction * lr` and lr (Smith 2017, "Cyclical
  Learning Rates for Training Neural Networks"), `cycles` full cycles over the run.
- `one_cycle`: warm-up to lr then annealing far below it (Smith & Topin 2019), with momentum
  cycled inversely when the optimizer has momentum or betas.

Any schedule but `one_cycle` and `hessian` (which set the rate's start themselves) can start
with a linear warm-up, the option `warmup_fraction` (of the steps) or `warmup_steps`:
lr_0 * (t + 1) / (w + 1) for t < w, lr_0 the schedule's first rate, then the schedule over
the remaining steps (Goyal et al. 2017, "Accurate, Large Minibatch SGD"; Vaswani et al.
2017). Adam's first steps divide by a second-moment estimate built from few gradients;
warm-up keeps those steps small (Liu et al. 2020, "On the Variance of the Adaptive Learning
Rate and Beyond").
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch.optim import lr_scheduler

from gradsight.errors import InputError
from gradsight.optim.hessian_lr import hessian_schedule

Scheduler = lr_scheduler.LRScheduler
ScheduleFactory = Callable[..., Scheduler | None]


def _constant(optimizer: torch.optim.Optimizer, total_steps: int) -> None:
    return None


def _step(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    step_size: int | None = None,
    gamma: float = 0.1,
) -> Scheduler:
    return lr_scheduler.StepLR(optimizer, step_size or max(1, total_steps // 3), gamma=gamma)


def _cosine(optimizer: torch.optim.Optimizer, total_steps: int, eta_min: float = 0.0) -> Scheduler:
    return lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=eta_min)


def _cyclic(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    cycles: int = 4,
    base_fraction: float = 0.1,
    mode: str = "triangular",
) -> Scheduler:
    max_lrs = [group["lr"] for group in optimizer.param_groups]
    return lr_scheduler.CyclicLR(
        optimizer,
        base_lr=[base_fraction * lr for lr in max_lrs],
        max_lr=max_lrs,
        step_size_up=max(1, total_steps // (2 * cycles)),
        mode=mode,
        # Smith's triangular policy cycles the learning rate only.
        cycle_momentum=False,
    )


def _one_cycle(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Scheduler:
    defaults = optimizer.defaults
    has_momentum = bool(defaults.get("momentum")) or "betas" in defaults
    return lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=[group["lr"] for group in optimizer.param_groups],
        total_steps=total_steps,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        cycle_momentum=has_momentum,
    )


SCHEDULES: dict[str, ScheduleFactory] = {
    "constant": _constant,
    "step": _step,
    "cosine": _cosine,
    "cyclic": _cyclic,
    "one_cycle": _one_cycle,
    "hessian": hessian_schedule,
}


def needs_model(name: str) -> bool:
    """Whether schedule `name` reads the model, not only the optimizer: its factory takes
    `model` (then also `loss_fn` and a fixed batch `data`, as `hessian_schedule` does)."""
    return name in SCHEDULES and "model" in inspect.signature(SCHEDULES[name]).parameters


def register_schedule(name: str, factory: ScheduleFactory) -> None:
    """Make a schedule available by name; `factory(optimizer, total_steps, **options)`."""
    SCHEDULES[name] = factory


# Schedules that set the rate's start themselves: no warm-up in front of them.
NO_WARMUP = ("one_cycle", "hessian")


def warmup_length(
    total_steps: int, warmup_steps: int | None = None, warmup_fraction: float | None = None
) -> int:
    """Warm-up steps from either option (0 when neither is given).

    Raises:
        InputError: Both given, or a value out of range.
    """
    if warmup_steps is not None and warmup_fraction is not None:
        raise InputError("give warmup_steps or warmup_fraction, not both")
    if warmup_fraction is not None:
        if not 0 <= warmup_fraction < 1:
            raise InputError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
        return round(warmup_fraction * total_steps)
    if warmup_steps is not None:
        if isinstance(warmup_steps, bool) or not 0 <= int(warmup_steps) < total_steps:
            raise InputError(f"warmup_steps must be in [0, {total_steps}), got {warmup_steps}")
        return int(warmup_steps)
    return 0


def build_schedule(
    name: str, optimizer: torch.optim.Optimizer, total_steps: int, **options: Any
) -> Scheduler | None:
    """The scheduler called `name` for a run of `total_steps` steps (None for `constant`).

    `warmup_steps` or `warmup_fraction` in `options` puts a linear warm-up in front (see the
    module docstring); the schedule then runs over the remaining steps.
    """
    if name not in SCHEDULES:
        raise InputError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")
    warmup = warmup_length(
        total_steps, options.pop("warmup_steps", None), options.pop("warmup_fraction", None)
    )
    if warmup and name in NO_WARMUP:
        raise InputError(f"schedule {name!r} sets the rate's start itself: no warm-up in front")
    try:
        main = SCHEDULES[name](optimizer, max(1, total_steps - warmup), **options)
    except TypeError as error:
        raise InputError(f"schedule {name!r}: {error}") from None
    if not warmup:
        return main
    ramp = lr_scheduler.LinearLR(optimizer, start_factor=1 / (warmup + 1), total_iters=warmup)
    if main is None:  # constant: LinearLR holds the full rate after the ramp
        return ramp
    return lr_scheduler.SequentialLR(optimizer, [ramp, main], milestones=[warmup])
