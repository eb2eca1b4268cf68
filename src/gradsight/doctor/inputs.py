"""What the doctor trains on: a `Task`, or a user's DataLoader or (inputs, targets) tensors
turned into one, with a held-out split."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from gradsight.checks import check_float
from gradsight.data.task import IGNORE_INDEX, Task
from gradsight.errors import InputError

LOSSES = ("cross_entropy", "mse")
# Seed of the permutation that holds out the test split of a loader's or tensors' data.
HOLDOUT_SEED = 0


def as_task(
    task_or_loader: Task | DataLoader | tuple[Tensor, Tensor],
    loss: str | None = None,
    holdout: float = 0.2,
) -> Task:
    """The doctor's `Task`: a Task as given, or one made from a loader's batches or tensors.

    A DataLoader is read once, batch by batch, into memory (every trial must see the same
    examples in the same order for a given seed); a random `holdout` fraction of the examples
    (a fixed permutation, seed `HOLDOUT_SEED`) becomes the test split on which remedies are
    compared. A shuffling loader yields another order, so another split, on every call.

    Args:
        task_or_loader: A `gs.data.Task`, a DataLoader yielding (inputs, targets) batches, or
            a pair of tensors (inputs (N, ...), targets (N, ...)).
        loss: "cross_entropy" (integer class targets, metric accuracy) or "mse" (float
            targets, metric mse); None infers it from the targets' dtype. A Task keeps its own.
        holdout: Fraction of a loader's or tensors' examples held out for testing, in (0, 1).

    Returns:
        A `Task` named "data" for a loader or tensors.

    Raises:
        TypeError: For anything else, batches that are not (inputs, targets) pairs, or a
            callable loss (the doctor compares runs with the task's named loss and metric).
        InputError: For an unknown loss name, mismatched lengths, or too few examples.
    """
    if isinstance(task_or_loader, Task):
        if loss is not None and loss != task_or_loader.loss:
            raise InputError(f"loss={loss!r} disagrees with the task's own {task_or_loader.loss!r}")
        return task_or_loader
    if isinstance(task_or_loader, DataLoader):
        x, y = _read(task_or_loader)
    elif isinstance(task_or_loader, tuple | list) and len(task_or_loader) == 2:
        x, y = _tensor(task_or_loader[0], "inputs"), _tensor(task_or_loader[1], "targets")
    else:
        raise TypeError(
            "task_or_loader must be a gs.data.Task, a DataLoader of (inputs, targets) batches or "
            f"an (inputs, targets) pair of tensors, got {type(task_or_loader).__name__}"
        )
    if len(x) != len(y):
        raise InputError(f"inputs and targets differ in length: {len(x)} and {len(y)}")
    holdout = check_float("holdout", holdout, 0.0, 1.0, open_low=True, open_high=True)
    loss = _loss(loss, y)
    n_test = round(holdout * len(x))
    if n_test < 1 or n_test >= len(x):
        raise InputError(
            f"{len(x)} examples cannot be split with holdout={holdout}: need one on each side"
        )
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(HOLDOUT_SEED))
    test, train = order[:n_test], order[n_test:]
    if loss == "cross_entropy":
        scored = y[y != IGNORE_INDEX]
        outputs = int(scored.max()) + 1 if scored.numel() else 1
    else:
        outputs = int(y[0].numel())
    return Task(
        name="data",
        x_train=x[train],
        y_train=y[train],
        x_test=x[test],
        y_test=y[test],
        loss=loss,
        metric="accuracy" if loss == "cross_entropy" else "mse",
        input_shape=tuple(x.shape[1:]),
        output_size=outputs,
        options={"holdout": holdout, "holdout_seed": HOLDOUT_SEED},
        description=f"the user's data: {len(train)} training and {n_test} held-out examples",
    )


def _tensor(value: Any, name: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() == 0:
        raise InputError(f"{name} must have a batch dimension, got a 0-d tensor")
    return value.detach().cpu()


def _read(loader: DataLoader) -> tuple[Tensor, Tensor]:
    """All of a loader's batches, concatenated (inputs, targets)."""
    xs, ys = [], []
    for i, batch in enumerate(loader):
        if not (isinstance(batch, tuple | list) and len(batch) == 2):
            raise TypeError(
                f"the loader's batch {i} is a {type(batch).__name__}"
                f"{f' of {len(batch)}' if isinstance(batch, tuple | list) else ''}, "
                "not an (inputs, targets) pair"
            )
        xs.append(_tensor(batch[0], "the loader's inputs"))
        ys.append(_tensor(batch[1], "the loader's targets"))
    if not xs:
        raise InputError("the loader yielded no batches")
    return torch.cat(xs), torch.cat(ys)


def _loss(loss: Any, y: Tensor) -> str:
    """The loss name: given, or cross entropy for integer targets and mse for float ones."""
    if callable(loss):
        raise TypeError(
            f"loss must be one of {', '.join(LOSSES)}, not a callable: the doctor compares runs "
            "by a named loss and its metric"
        )
    if loss is None:
        loss = "mse" if y.is_floating_point() else "cross_entropy"
    if loss not in LOSSES:
        raise InputError(f"unknown loss {loss!r}; choose one of: {', '.join(LOSSES)}")
    if loss == "cross_entropy" and y.is_floating_point():
        raise InputError(f"loss 'cross_entropy' needs integer class targets, got {y.dtype}")
    if loss == "mse" and not y.is_floating_point():
        raise InputError(f"loss 'mse' needs float targets, got {y.dtype}")
    return loss
