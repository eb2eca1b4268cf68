"""The adding problem: a long-range memory benchmark for recurrent networks."""

from __future__ import annotations

import torch

from gradsight.checks import check_elements, check_int
from gradsight.data.task import Task


def adding(seed: int = 0, length: int = 50, n_train: int = 5000, n_test: int = 1000) -> Task:
    """The adding problem (Hochreiter & Schmidhuber 1997), in the form of Le et al. 2015 and
    Arjovsky et al. 2016.

    Each input is a sequence of T = `length` steps with two channels: channel 0 holds values
    u_t ~ U(0, 1), channel 1 marks exactly two steps, one drawn uniformly from the first half
    [0, T//2) and one from the second half [T//2, T). The target is y = u_a + u_b, the sum of
    the two marked values. Predicting the constant E[y] = 1 scores
    MSE = Var(u_a + u_b) = 2/12 ≈ 0.167; a model has learned the task well below that.

    With `standardize=True` each channel is standardized over N and T like any input, so the
    marker channel takes two values (≈ -0.2 and ≈ 4.9 for T=50) instead of 0 and 1.
    The target is never standardized.

    Args:
        seed: Seed of the local generator.
        length: Sequence length T, >= 2.
        n_train: Number of training sequences.
        n_test: Number of test sequences.

    Returns:
        An mse/mse Task with inputs (N, T, 2) and float32 targets (N, 1).
    """
    length = check_int("length", length, 2)
    n_train, n_test = check_int("n_train", n_train, 1), check_int("n_test", n_test, 1)
    check_elements("adding (n_train + n_test) x length x 2 inputs", n_train + n_test, length, 2)
    g = torch.Generator().manual_seed(seed)
    half = length // 2

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        values = torch.rand(n, length, generator=g)  # (N, T)
        first = torch.randint(0, half, (n,), generator=g)
        second = torch.randint(half, length, (n,), generator=g)
        marks = torch.zeros(n, length)  # (N, T)
        rows = torch.arange(n)
        marks[rows, first] = 1.0
        marks[rows, second] = 1.0
        x = torch.stack([values, marks], dim=-1)  # (N, T, 2)
        y = (values * marks).sum(dim=1, keepdim=True)  # (N, 1)
        return x, y

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    return Task(
        name="adding",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        loss="mse",
        metric="mse",
        input_shape=(length, 2),
        output_size=1,
        description=(
            f"Adding problem, T={length}: predicting the constant 1 scores "
            "MSE = Var(u1 + u2) = 2/12 ≈ 0.167; learning means going well below it."
        ),
    )
