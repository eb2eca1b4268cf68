"""The learning-rate range test (Smith 2017): train briefly while the rate grows exponentially.

Step i of n uses lr_i = start_lr * (end_lr / start_lr)^(i / (n - 1)). The loss is smoothed by
an exponential moving average with bias correction,

    avg_i = beta * avg_(i-1) + (1 - beta) * loss_i,     smooth_i = avg_i / (1 - beta^(i+1)),

and the test stops early once smooth_i > diverge * min(smooth) (the loss blew up) or a loss is
not finite. The suggestions follow fastai's `lr_find` (Howard & Gugger 2020), read on the
curve without its first tenth and last five points:

- `minimum`: the lr of the lowest smoothed loss, divided by 10 (one decade before blow-up);
- `steep`: the lr where the loss falls fastest, min d(smooth) / d(log lr);
- `valley`: half way along the longest descending stretch of the curve (its longest
  decreasing subsequence), the suggestion of `LRFindResult.suggestion`.

Leslie N. Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017, section 3.3.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from gradsight.data.task import Task
from gradsight.errors import InputError
from gradsight.train.batches import batches
from gradsight.train.lr_find_result import LRFindResult
from gradsight.train.optimizers import build_optimizer

# Points left out of the suggestions at each end: the start is noisy, the end has blown up.
SKIP_START_FRACTION = 0.1
SKIP_END = 5


def lr_find(
    model: nn.Module,
    task: Task,
    optimizer: str | torch.optim.Optimizer = "sgd",
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_it: int = 100,
    *,
    batch_size: int | None = 64,
    beta: float = 0.98,
    diverge: float = 4.0,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    optimizer_options: dict[str, Any] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> LRFindResult:
    """Run the LR range test on `task` and restore the model (and optimizer) afterwards.

    Args:
        model: The model to probe; its weights, buffers and train/eval mode are restored.
        task: The problem (`gs.data.load`); batches come from its training split.
        optimizer: A name of `gradsight.train.OPTIMIZERS`, or an optimizer over `model`'s
            parameters, whose state and learning rates are restored afterwards.
        start_lr: First learning rate (> 0).
        end_lr: Last learning rate (> start_lr).
        num_it: Steps of the test (>= 10), unless the loss blows up first.
        batch_size: Examples per step; None uses the whole training set.
        beta: Smoothing of the loss curve, in [0, 1).
        diverge: Stop once the smoothed loss exceeds this multiple of its minimum (> 1).
        momentum: Momentum of a named optimizer that has one.
        weight_decay: Weight decay of a named optimizer.
        optimizer_options: Other arguments of a named optimizer (betas, eps, ...).
        seed: Seeds the batch order and the RNG used during the test (dropout); the global
            RNG state is restored afterwards.
        device: Where to run; default: where the model's parameters are.

    Returns:
        An `LRFindResult` with the curve and the suggestions.
    """
    if not start_lr > 0:
        raise InputError(f"start_lr must be > 0, got {start_lr}")
    if not end_lr > start_lr:
        raise InputError(f"end_lr must be > start_lr ({start_lr}), got {end_lr}")
    if num_it < 10:
        raise InputError(f"num_it must be >= 10, got {num_it}")
    if not 0 <= beta < 1:
        raise InputError(f"beta must be in [0, 1), got {beta}")
    if not diverge > 1:
        raise InputError(f"diverge must be > 1, got {diverge}")
    if batch_size is not None and batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    saved_model = copy.deepcopy(model.state_dict())
    was_training = model.training
    if isinstance(optimizer, torch.optim.Optimizer):
        opt = optimizer
        saved_opt = copy.deepcopy(opt.state_dict())
    else:
        opt = build_optimizer(
            optimizer,
            model.parameters(),
            start_lr,
            momentum=momentum,
            weight_decay=weight_decay,
            **(optimizer_options or {}),
        )
        saved_opt = None
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=rng_devices):
            torch.manual_seed(seed)
            model.to(device).train()
            lrs, raw, smooth = _range_test(
                model,
                task.to(device),
                opt,
                start_lr,
                end_lr,
                num_it,
                batch_size,
                beta,
                diverge,
                seed,
            )
    finally:
        model.load_state_dict(saved_model)
        model.train(was_training)
        if saved_opt is not None:
            opt.load_state_dict(saved_opt)
    valley, steep, minimum = suggestions(lrs, smooth)
    options = {"optimizer": optimizer if isinstance(optimizer, str) else type(optimizer).__name__}
    options |= {"start_lr": start_lr, "end_lr": end_lr, "num_it": num_it, "batch_size": batch_size}
    return LRFindResult(
        lrs, smooth, raw, valley, steep, minimum, stopped_early=len(lrs) < num_it, options=options
    )


def _range_test(
    model: nn.Module,
    task: Task,
    opt: torch.optim.Optimizer,
    start_lr: float,
    end_lr: float,
    num_it: int,
    batch_size: int | None,
    beta: float,
    diverge: float,
    seed: int,
) -> tuple[list[float], list[float], list[float]]:
    """The test's loop: (lrs, raw losses, smoothed losses) of the steps taken."""
    x, y = task.split("train")
    data = batches(x, y, batch_size, seed)
    ratio = end_lr / start_lr
    lrs: list[float] = []
    raw: list[float] = []
    smooth: list[float] = []
    average, best = 0.0, math.inf
    for i in range(num_it):
        lr = start_lr * ratio ** (i / (num_it - 1))
        for group in opt.param_groups:
            group["lr"] = lr
        xb, yb = next(data)
        loss = task.loss_fn(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        # One host sync per step: the early stop needs the loss value now.
        value = loss.item()
        lrs.append(lr)
        raw.append(value)
        if not math.isfinite(value):
            smooth.append(math.inf)
            break
        average = beta * average + (1 - beta) * value
        smooth.append(average / (1 - beta ** (i + 1)))
        best = min(best, smooth[-1])
        if smooth[-1] > diverge * best:
            break
    return lrs, raw, smooth


def suggestions(lrs: Sequence[float], losses: Sequence[float]) -> tuple[float, float, float]:
    """(valley, steep, minimum) of a range-test curve (see the module docstring)."""
    start = int(len(lrs) * SKIP_START_FRACTION)
    end = len(lrs) - SKIP_END if len(lrs) - SKIP_END - start >= 3 else len(lrs)
    lrs, losses = list(lrs[start:end]), list(losses[start:end])
    finite = [i for i, v in enumerate(losses) if math.isfinite(v)]
    lrs, losses = [lrs[i] for i in finite], [losses[i] for i in finite]
    if len(lrs) < 2:
        raise InputError(f"the range test took too few finite steps ({len(lrs)}) to suggest an lr")
    lowest = min(range(len(losses)), key=losses.__getitem__)
    minimum = lrs[lowest] / 10
    slopes = [
        (losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i]))
        for i in range(len(lrs) - 1)
    ]
    steep = lrs[min(range(len(slopes)), key=slopes.__getitem__)]
    return lrs[_valley_index(losses)], steep, minimum


def _valley_index(losses: Sequence[float]) -> int:
    """Half way along the longest decreasing subsequence of `losses` (fastai's `valley`)."""
    n = len(losses)
    longest = [1] * n  # longest[i]: longest decreasing subsequence ending at i
    max_start = max_end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and longest[i] < longest[j] + 1:
                longest[i] = longest[j] + 1
        if longest[i] > longest[max_end]:
            max_end = i
            max_start = i - longest[i] + 1
    third = (max_end - max_start) / 3
    return max_start + int(third) + int(third / 2)
