"""Mini-batches drawn from in-memory tensors with their own seeded generator."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor


def batches(
    x: Tensor, y: Tensor, batch_size: int | None, seed: int
) -> Iterator[tuple[Tensor, Tensor]]:
    """Endless (inputs, targets) batches.

    `batch_size=None` (or >= N) gives the whole set every time: full-batch gradient descent.
    Otherwise each epoch is a fresh permutation from a generator seeded with `seed`, cut into
    batches of exactly `batch_size`; the incomplete remainder is dropped, so every step sees
    the same number of examples (batch-norm statistics and gradient noise stay comparable).
    """
    n = len(x)
    if batch_size is None or batch_size >= n:
        while True:
            yield x, y
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=generator).to(x.device)
        for start in range(0, n - batch_size + 1, batch_size):
            index = order[start : start + batch_size]
            yield x[index], y[index]


def steps_per_epoch(n: int, batch_size: int | None) -> int:
    """Optimizer steps in one pass over `n` examples."""
    return 1 if batch_size is None or batch_size >= n else n // batch_size
