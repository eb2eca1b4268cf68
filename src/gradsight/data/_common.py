"""Input standardization shared by the task generators."""

from __future__ import annotations

import torch
from torch import Tensor


def standardize_inputs(x_train: Tensor, x_test: Tensor) -> tuple[Tensor, Tensor]:
    """Shift and scale each input feature with the train split's mean and standard deviation.

    x' = (x - mean_train) / std_train, applied to both splits. The statistics are taken per
    feature of the last dimension over all other dimensions: per column for (N, F) inputs,
    per input channel over N and T for sequences (N, T, C). The std is the population one
    (ddof 0), so the train split ends with std exactly 1. A feature constant on the train split
    is only centred (it becomes 0), never divided by zero.

    Args:
        x_train: Training inputs, (N, ..., F).
        x_test: Test inputs, (M, ..., F).

    Returns:
        The standardized (x_train, x_test), float32.
    """
    dims = tuple(range(x_train.dim() - 1))
    train64 = x_train.double()
    mean = train64.mean(dims)  # (F,)
    # Two passes in float64: a constant float32 column gets a std of exactly 0, not rounding noise.
    std = (train64 - mean).square().mean(dims).sqrt()  # (F,)
    scale = torch.where(std > 0, std, torch.ones_like(std))
    return ((x_train.double() - mean) / scale).float(), ((x_test.double() - mean) / scale).float()
