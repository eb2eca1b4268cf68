"""Remedies that change the training settings (keyword arguments of `gs.fit`), not the model."""

from __future__ import annotations

from typing import Any

from torch import nn

from gradsight.data.task import Task

# Values each remedy sets (the diagnosis quotes them in its advice).
from gradsight.diagnosis.remedy_settings import (
    ADAPTIVE,
    CLIP_NORM,
    LR_FACTOR,
    MOMENTUM,
    WARMUP_FRACTION,
    WEIGHT_DECAY,
)
from gradsight.remedies.base import (
    ADAPTIVE_OPTIMIZERS,
    NotApplicable,
    Treatment,
    copy_model,
    resolved_lr,
    treated,
)
from gradsight.train.schedules import NO_WARMUP


def _settings(
    model: nn.Module, settings: dict[str, Any], task: Task, name: str, change: str, **updates: Any
) -> Treatment:
    return treated(name, copy_model(model), {**settings, **updates}, task, change)


def gradient_clipping(
    model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0
) -> Treatment:
    """Clip the global gradient norm to `CLIP_NORM` before each step (Pascanu et al. 2013)."""
    if settings.get("clip_norm") is not None:
        raise NotApplicable(
            f"the gradient norm is already clipped (clip_norm={settings['clip_norm']})"
        )
    change = (
        f"torch.nn.utils.clip_grad_norm_(model.parameters(), {CLIP_NORM}) before "
        f"optimizer.step(), or gs.fit(..., clip_norm={CLIP_NORM})"
    )
    return _settings(model, settings, task, "gradient_clipping", change, clip_norm=CLIP_NORM)


def weight_decay(
    model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0
) -> Treatment:
    """Weight decay `WEIGHT_DECAY` in the optimizer (decoupled for adamw)."""
    if settings.get("weight_decay", 0.0) > 0:
        raise NotApplicable(f"weight decay is already on (weight_decay={settings['weight_decay']})")
    change = (
        f"the optimizer's weight_decay={WEIGHT_DECAY}, or gs.fit(..., weight_decay={WEIGHT_DECAY})"
    )
    return _settings(model, settings, task, "weight_decay", change, weight_decay=WEIGHT_DECAY)


def lower_learning_rate(
    model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0
) -> Treatment:
    """The learning rate divided by `LR_FACTOR`."""
    lr = resolved_lr(settings) / LR_FACTOR
    change = f"learning rate {lr:g} (was {lr * LR_FACTOR:g}): gs.fit(..., lr={lr:g})"
    return _settings(model, settings, task, "lower_learning_rate", change, lr=lr)


def raise_learning_rate(
    model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0
) -> Treatment:
    """The learning rate multiplied by `LR_FACTOR`."""
    lr = resolved_lr(settings) * LR_FACTOR
    change = f"learning rate {lr:g} (was {lr / LR_FACTOR:g}): gs.fit(..., lr={lr:g})"
    return _settings(model, settings, task, "raise_learning_rate", change, lr=lr)


def lr_warmup(model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0) -> Treatment:
    """A linear warm-up of the learning rate over the first `WARMUP_FRACTION` of the steps,
    in front of the run's schedule (`gs.train.build_schedule`'s `warmup_fraction`).

    Adam's first steps divide by a second-moment estimate built from few gradients, and
    attention logits and the residual stream grow fastest early: small first steps let them
    settle (Goyal et al. 2017; Liu et al. 2020; Wortsman et al. 2023).
    """
    schedule = settings.get("schedule", "constant")
    if schedule in NO_WARMUP:
        raise NotApplicable(f"schedule {schedule!r} sets the start of the rate itself")
    options = dict(settings.get("schedule_options") or {})
    if options.get("warmup_steps") or options.get("warmup_fraction"):
        raise NotApplicable(f"the learning rate already warms up ({options})")
    options["warmup_fraction"] = WARMUP_FRACTION
    change = (
        f"a linear warm-up over the first {WARMUP_FRACTION:.0%} of steps: "
        "torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=W) "
        "(in a SequentialLR before the schedule), or "
        f'gs.fit(..., schedule_options={{"warmup_fraction": {WARMUP_FRACTION}}})'
    )
    return _settings(model, settings, task, "lr_warmup", change, schedule_options=options)


def momentum(model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0) -> Treatment:
    """SGD with momentum `MOMENTUM`: averages the zig-zag, crosses flat regions."""
    optimizer = settings.get("optimizer", "sgd")
    if optimizer != "sgd":
        raise NotApplicable(f"optimizer {optimizer!r} already has momentum or its own averaging")
    if settings.get("momentum", 0.0) > 0:
        raise NotApplicable(f"momentum is already on (momentum={settings['momentum']})")
    change = (
        f"torch.optim.SGD(model.parameters(), lr=..., momentum={MOMENTUM}), or "
        f"gs.fit(..., momentum={MOMENTUM})"
    )
    return _settings(model, settings, task, "momentum", change, momentum=MOMENTUM)


def adaptive_optimizer(
    model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0
) -> Treatment:
    """Adam at lr 1e-3: per-parameter step sizes rescue small or uneven gradients."""
    optimizer = settings.get("optimizer", "sgd")
    if optimizer in ADAPTIVE_OPTIMIZERS:
        raise NotApplicable(f"optimizer {optimizer!r} is already adaptive")
    name, lr = ADAPTIVE
    change = (
        f"torch.optim.Adam(model.parameters(), lr={lr:g}), or "
        f'gs.fit(..., optimizer="{name}", lr={lr:g})'
    )
    updates = {"optimizer": name, "lr": lr, "momentum": 0.0, "nesterov": False}
    return _settings(model, settings, task, "adaptive_optimizer", change, **updates)


def lr_range_test(
    model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0
) -> Treatment:
    """The learning rate suggested by an LR range test (Smith 2017) on a copy of the model."""
    from gradsight.train.lr_find import lr_find

    changed = copy_model(model)
    optimizer = settings.get("optimizer", "sgd")
    result = lr_find(
        changed,
        task,
        optimizer,
        batch_size=settings.get("batch_size", 64),
        momentum=settings.get("momentum", 0.0),
        weight_decay=settings.get("weight_decay", 0.0),
        seed=seed,
    )  # lr_find restores the weights it probed
    lr = float(result.suggestion)
    if not lr > 0:
        raise NotApplicable("the LR range test found no learning rate where the loss falls")
    change = f"learning rate {lr:.3g} from gs.lr_find(model, task): gs.fit(..., lr={lr:.3g})"
    return treated("lr_range_test", changed, {**settings, "lr": lr}, task, change)
