"""HessianLR: a learning rate from the loss's sharpest curvature, lr = c / lambda_max.

On a quadratic with Hessian H, gradient descent multiplies the error along eigenvector i by
(1 - lr * lambda_i) each step: it converges only while lr < 2 / lambda_max, and lr =
1 / lambda_max removes the sharpest direction's error in one step (LeCun, Simard &
Pearlmutter 1993, "Automatic learning rate maximization by on-line estimation of the
Hessian's eigenvectors"; LeCun et al. 1998, "Efficient BackProp", sec. 5). Neural networks
train near the edge lr * lambda_max ~ 2 (Cohen et al. 2021), and lambda_max changes as they
train, so it is re-estimated every `every` steps with Lanczos (`gs.curvature.eigenvalues`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from gradsight.checks import check_int, check_positive
from gradsight.curvature.eigen import eigenvalues
from gradsight.curvature.hvp import LossFn


class HessianLR(LRScheduler):
    """Sets every group's lr to c / lambda_max, re-estimating lambda_max every `every` steps.

    Call `step()` after `optimizer.step()`, like any scheduler. The first estimate is made
    when the scheduler is built (at the initial parameters); step t re-estimates when
    t % every == 0. Estimating leaves the model's buffers, the RNG and `.grad` as they were.
    Where no curvature is positive (lambda_max <= 0) the lr is left as it was.

    ```python
    scheduler = HessianLR(optimizer, model, loss_fn, (x, y), c=1.0, every=100)
    ```

    Args:
        optimizer: The optimizer whose learning rate is set.
        model: The model; lambda_max is that of the Hessian over its trainable parameters.
        loss_fn: `loss_fn(model(inputs), targets)`, a scalar.
        data: An `(inputs, targets)` batch, a re-iterable of batches, or a callable that
            returns either (called at each estimate: a fresh batch each time).
        c: The lr in units of 1 / lambda_max (stable below 2 on a quadratic).
        every: Steps between estimates.
        max_lr: Upper bound on the lr (None: no bound).
        tol: Relative tolerance of Lanczos.
        max_iter: Hessian-vector products allowed per estimate.
        seed: Seed of Lanczos's start vector.
        last_epoch: As in torch.optim.lr_scheduler.

    Attributes:
        lambda_max: The latest estimate (float).
        estimates: `(step, lambda_max, lr)` of every estimate so far.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        model: nn.Module,
        loss_fn: LossFn,
        data: Any,
        *,
        c: float = 1.0,
        every: int = 100,
        max_lr: float | None = None,
        tol: float = 1e-3,
        max_iter: int = 100,
        seed: int = 0,
        last_epoch: int = -1,
    ) -> None:
        self.c = check_positive("c", c)
        self.every = check_int("every", every, 1)
        self.max_lr = None if max_lr is None else check_positive("max_lr", max_lr)
        self.model, self.loss_fn, self.data = model, loss_fn, data
        self.tol, self.max_iter, self.seed = tol, max_iter, seed
        self.lambda_max = math.nan
        self.estimates: list[tuple[int, float, float]] = []
        super().__init__(optimizer, last_epoch)

    def estimate(self) -> float:
        """lambda_max of the loss Hessian at the current parameters (Lanczos, which="LA")."""
        data = self.data() if callable(self.data) else self.data
        result = eigenvalues(
            self.model, self.loss_fn, data, which="LA", tol=self.tol, max_iter=self.max_iter,
            seed=self.seed,
        )  # fmt: skip
        return float(result.values[0])

    def get_lr(self) -> list[float]:
        """c / lambda_max at estimate steps, the current lr otherwise."""
        current = [float(group["lr"]) for group in self.optimizer.param_groups]
        if self.last_epoch % self.every != 0:
            return current
        self.lambda_max = self.estimate()
        if self.lambda_max <= 0:
            lrs = current
        else:
            lr = self.c / self.lambda_max
            lrs = [lr if self.max_lr is None else min(lr, self.max_lr)] * len(current)
        self.estimates.append((self.last_epoch, self.lambda_max, lrs[0]))
        return lrs


def hessian_schedule(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    *,
    model: nn.Module,
    loss_fn: LossFn,
    data: Any | Callable[[], Any],
    every: int | None = None,
    **options: Any,
) -> HessianLR:
    """Schedule factory for `gradsight.train.register_schedule("hessian", hessian_schedule)`.

    `every` defaults to a tenth of the run; other options (c, max_lr, tol, ...) go to
    `HessianLR`. `fit` must pass `model`, `loss_fn` and `data` (see HessianLR).
    """
    every = max(1, total_steps // 10) if every is None else every
    return HessianLR(optimizer, model, loss_fn, data, every=every, **options)
