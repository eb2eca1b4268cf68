"""Standardise the inputs: zero mean, unit variance per feature (LeCun et al. 1998)."""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from gradsight.data.task import Task
from gradsight.remedies.base import NotApplicable, Treatment, copy_model, treated

# Inputs count as standardised when every feature's |mean| and |std - 1| are below this
# (features of zero variance, such as constant pixels, are ignored).
STANDARDISED_TOLERANCE = 0.1
# Features whose std is below this are left unscaled (only centred) to avoid dividing by ~0.
MIN_STD = 1e-8


def normalize_inputs(
    model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0
) -> Treatment:
    """x -> (x - mean) / std per feature with train-split statistics, on both splits.

    Sequence inputs (N, T, F) are standardised per feature over N and T.
    """
    x = task.x_train
    if not x.is_floating_point():
        raise NotApplicable(f"the inputs are {x.dtype} (indices or tokens), not features")
    dims = tuple(range(x.dim() - 1)) if x.dim() == 3 else (0,)
    mean, std = x.mean(dim=dims), x.std(dim=dims)
    varying = std > MIN_STD
    if bool(
        (mean[varying].abs() < STANDARDISED_TOLERANCE).all()
        and ((std[varying] - 1).abs() < STANDARDISED_TOLERANCE).all()
    ):
        raise NotApplicable("the inputs are already standardised (mean ~0, std ~1 per feature)")
    scale = std.where(varying, std.new_ones(()))
    new_task = dataclasses.replace(
        task,
        x_train=(task.x_train - mean) / scale,
        x_test=(task.x_test - mean) / scale,
        options={**task.options, "standardize": True},
    )
    change = (
        "x = (x - mean) / std with the training split's per-feature mean and std, on every "
        "split; gs.data.load(..., standardize=True)"
    )
    return treated("normalize_inputs", copy_model(model), settings, new_task, change)
