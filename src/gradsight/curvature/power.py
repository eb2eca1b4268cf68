"""Power iteration: the classic, slow way to the largest-magnitude eigenvalue (for comparison).

v_{t+1} = A v_t / ||A v_t||, lambda_t = v_t . A v_t (von Mises 1929). The error shrinks like
|lambda_2 / lambda_1|^t, so close eigenvalues make it crawl, and it can only find the
eigenvalue of largest magnitude: negative curvature stays hidden unless it dominates (use
Lanczos with which="SA"). Stops when |lambda_t - lambda_{t-1}| <= tol * |lambda_{t-1}|, the rule
of PyHessian (Yao et al. 2020), which stops early when convergence is slow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from gradsight.checks import check_int, check_positive
from gradsight.curvature._vectors import gaussian, generator


class PowerResult(NamedTuple):
    """Attributes: value (the estimate), vector (unit, (n,)), matvecs, converged."""

    value: float
    vector: Tensor
    matvecs: int
    converged: bool


def power(
    matvec: Callable[[Tensor], Tensor],
    dim: int,
    *,
    tol: float = 1e-3,
    max_iter: int = 100,
    seed: int | torch.Generator = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> PowerResult:
    """Largest-magnitude eigenpair of a symmetric operator by power iteration.

    Args:
        matvec: v -> A v on flat (dim,) tensors.
        dim: n, the size of the space.
        tol: Relative change of the Rayleigh quotient that ends the iteration.
        max_iter: At most this many products.
        seed: Seed or torch.Generator of the Gaussian start vector.
        dtype: Dtype of the vectors.
        device: Device of the vectors.

    Returns:
        A `PowerResult`.
    """
    check_int("dim", dim, 1)
    check_positive("tol", tol)
    check_int("max_iter", max_iter, 1)
    v = gaussian((dim,), generator(seed), dtype, device)
    v = v / v.norm()
    value, converged, matvecs = None, False, 0
    for _ in range(max_iter):
        w = matvec(v)
        matvecs += 1
        new = float(torch.dot(v, w))  # one host sync per step, for the stopping rule
        norm = w.norm()
        if value is not None and abs(new - value) <= tol * abs(value):
            value, converged = new, True
            break
        value = new
        if float(norm) == 0.0:
            converged = True
            break
        v = w / norm
    return PowerResult(float(value), v, matvecs, converged)
