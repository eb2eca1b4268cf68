"""Learning-rate schedules by name, all from torch.optim.lr_scheduler, stepped once per step.

- `constant`: lr throughout.
- `step`: lr * gamma^(k) after every `step_size` steps (default: a tenth after each third).
- `cosine`: lr * (1 + cos(pi * t / T)) / 2 (Loshchilov & Hutter 2017, without restarts).
- `cyclic`: triangular cycles between `base_fraction * lr` and lr (Smith 2017, "Cyclical
  Learning Rates for Training Neural Networks"), `cycles` full cycles over the run.
- `one_cycle`: warm-up to lr then annealing far below it (Smith & Topin 2019), with momentum
  cycled inversely when the optimizer has momentum or betas.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim import lr_scheduler

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
}


def register_schedule(name: str, factory: ScheduleFactory) -> None:
    """Make a schedule available by name; `factory(optimizer, total_steps, **options)`."""
    SCHEDULES[name] = factory


def build_schedule(
    name: str, optimizer: torch.optim.Optimizer, total_steps: int, **options: Any
) -> Scheduler | None:
    """The scheduler called `name` for a run of `total_steps` steps (None for `constant`)."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")
    try:
        return SCHEDULES[name](optimizer, total_steps, **options)
    except TypeError as error:
        raise ValueError(f"schedule {name!r}: {error}") from None
