"""Interleaved 2D spirals: the classic small problem no linear model can solve."""

from __future__ import annotations

import math

import torch

from gradsight.checks import check_elements, check_float, check_int
from gradsight.data.task import Task


def spirals(
    seed: int = 0,
    n_train: int = 1000,
    n_test: int = 500,
    classes: int = 3,
    noise: float = 0.2,
    turns: float = 1.0,
) -> Task:
    """Interleaved spirals in the plane, one arm per class (as in CS231n's neural-net case study).

    A point of class k has radius t ~ U(0, 1) and angle
    θ = 2π·turns·t + 2πk/classes + noise·ε, ε ~ N(0, 1), so x = t·(cos θ, sin θ).
    The noise is on the angle, in radians. Classes are balanced within each split and the
    examples come in random order.

    Args:
        seed: Seed of the local generator.
        n_train: Number of training points.
        n_test: Number of test points.
        classes: Number of arms (classes), >= 2.
        noise: Std of the angular noise in radians, >= 0.
        turns: How many full turns each arm makes over radius 0..1, > 0.

    Returns:
        A cross-entropy/accuracy Task with inputs (N, 2) and int64 labels (N,).
    """
    n_train, n_test = check_int("n_train", n_train, 1), check_int("n_test", n_test, 1)
    classes = check_int("classes", classes, 2)
    noise = check_float("noise", noise)
    turns = check_float("turns", turns, open_low=True)
    check_elements("spirals (n_train + n_test) x 2 inputs", n_train + n_test, 2)
    g = torch.Generator().manual_seed(seed)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = (torch.arange(n) % classes)[torch.randperm(n, generator=g)]  # balanced, shuffled
        t = torch.rand(n, generator=g)
        theta = 2 * math.pi * (turns * t + y / classes) + noise * torch.randn(n, generator=g)
        x = t[:, None] * torch.stack([theta.cos(), theta.sin()], dim=1)  # (N, 2)
        return x, y

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    return Task(
        name="spirals",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        loss="cross_entropy",
        metric="accuracy",
        input_shape=(2,),
        output_size=classes,
        description=(
            f"{classes} interleaved 2D spirals ({turns:g} turns, angle noise {noise:g} rad): "
            f"chance accuracy 1/{classes} = {1 / classes:.3f}; a linear model scores about chance."
        ),
    )
