"""Argument checks shared by the Adam-family optimizers (one line each, with the bad value)."""

from __future__ import annotations

from gradsight.errors import InputError


def check_adam_args(lr: float, betas: tuple[float, float], eps: float, weight_decay: float) -> None:
    """Raise a ValueError naming the first out-of-range Adam hyper-parameter."""
    if not lr > 0:
        raise InputError(f"lr must be > 0, got {lr}")
    for i, beta in enumerate(betas):
        if not 0 <= beta < 1:
            raise InputError(f"betas[{i}] must be in [0, 1), got {beta}")
    if eps < 0:
        raise InputError(f"eps must be >= 0, got {eps}")
    if weight_decay < 0:
        raise InputError(f"weight_decay must be >= 0, got {weight_decay}")
