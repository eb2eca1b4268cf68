"""Lanczos iteration with full re-orthogonalisation, for any symmetric linear operator.

From a unit start vector q_1, Lanczos builds an orthonormal basis Q_m of the Krylov space
span{q_1, A q_1, ..., A^{m-1} q_1} in which A is tridiagonal:
A Q_m = Q_m T_m + beta_m q_{m+1} e_m^T, with T_m = tridiag(beta, alpha, beta)
(Lanczos 1950; Golub & Van Loan, "Matrix Computations", sec. 10.1). The eigenvalues theta_i
of T_m (Ritz values) approach A's extreme eigenvalues after few products, far faster than
power iteration (Kaniel-Paige-Saad bounds), and from both ends of the spectrum at once.

A Ritz pair (theta_i, Q_m s_i) has residual r_i = ||A y_i - theta_i y_i|| = |beta_m s_{m,i}|,
and some eigenvalue lambda satisfies |theta_i - lambda| <= min(r_i, r_i^2 / gap_i), gap_i being
the distance from theta_i to the rest of the spectrum (Parlett, "The Symmetric Eigenvalue
Problem", 1998, Thm. 11.7.1; Kato-Temple). The gap is estimated from the other Ritz values,
each moved towards theta_i by its own residual. The iteration stops when every wanted Ritz value has
min(r_i, r_i^2 / gap_i) <= tol * max(|theta_i|, 1e-2 * ||A||_est): a relative error bound, or
for eigenvalues near zero one relative to a hundredth of the spectrum's scale.

Rounding makes plain Lanczos lose orthogonality (and repeat eigenvalues); every new vector
is therefore orthogonalised against the whole basis, a second time when the first pass
removed most of it ("twice is enough", classical Gram-Schmidt; Giraud et al. 2005), which
costs O(m n) per step, small next to one Hessian-vector product.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from gradsight.checks import check_choice, check_int, check_positive
from gradsight.curvature._vectors import gaussian, generator
from gradsight.errors import InputError

WHICH = ("LA", "SA", "LM", "BE")
# Ritz values within this fraction of ||A|| count as "near zero" for the stopping rule.
ZERO_SCALE = 1e-2


class LanczosResult(NamedTuple):
    """The wanted Ritz pairs and how they were found.

    Attributes:
        values: Eigenvalue estimates, float64, (k,): LA descending, SA ascending, LM by
            decreasing magnitude, BE ascending.
        vectors: Unit Ritz vectors as rows, (k, n), or None when not requested.
        residuals: ||A y - theta y|| of each pair, float64, (k,): bounds on the errors
            (the errors are also bounded by residual^2 / gap).
        matvecs: Products with A used.
        converged: Whether every wanted pair met the tolerance.
        alphas: Diagonal of T_m, float64, (m,).
        betas: Off-diagonal of T_m, float64, (m - 1,).
    """

    values: Tensor
    vectors: Tensor | None
    residuals: Tensor
    matvecs: int
    converged: bool
    alphas: Tensor
    betas: Tensor


def tridiagonal(alphas: Tensor, betas: Tensor) -> Tensor:
    """T = diag(alphas) + diag(betas, 1) + diag(betas, -1), (m, m)."""
    return torch.diag(alphas) + torch.diag(betas, 1) + torch.diag(betas, -1)


def select(theta: Tensor, k: int, which: str) -> Tensor:
    """Indices of the k wanted values among ascending Ritz values `theta`, in output order."""
    m = len(theta)
    k = min(k, m)
    if which == "LA":
        return torch.arange(m - 1, m - 1 - k, -1)
    if which == "SA":
        return torch.arange(k)
    if which == "LM":
        return torch.argsort(theta.abs(), descending=True, stable=True)[:k]
    low = k // 2  # BE: the smaller half from the bottom, the rest from the top
    return torch.cat([torch.arange(low), torch.arange(m - (k - low), m)]).unique()


def lanczos(
    matvec: Callable[[Tensor], Tensor],
    dim: int,
    *,
    k: int = 1,
    which: str = "LA",
    tol: float = 1e-3,
    max_iter: int = 100,
    vectors: bool = False,
    seed: int | torch.Generator = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> LanczosResult:
    """k extreme eigenpairs of a symmetric operator by Lanczos with full re-orthogonalisation.

    Args:
        matvec: v -> A v on flat (dim,) tensors; A must be symmetric.
        dim: n, the size of the space.
        k: How many eigenpairs.
        which: "LA" largest algebraic, "SA" smallest algebraic (negative curvature), "LM"
            largest magnitude, "BE" both ends (k // 2 smallest, the rest largest).
        tol: Relative residual tolerance of the stopping rule (module docstring).
        max_iter: At most this many products (capped at dim, where Lanczos is exact).
        vectors: Also return the Ritz vectors.
        seed: Seed or torch.Generator of the Gaussian start vector (and of restarts).
        dtype: Dtype of the basis vectors (that of the operator's vectors).
        device: Device of the basis vectors.

    Returns:
        A `LanczosResult`.
    """
    check_int("dim", dim, 1)
    check_int("k", k, 1)
    check_choice("eigenvalue order (which)", which, WHICH)
    check_positive("tol", tol)
    check_int("max_iter", max_iter, 1)
    if k > dim:
        raise InputError(f"k must be <= dim = {dim}, got {k}")
    steps = min(max(max_iter, k), dim)
    gen = generator(seed)
    basis = torch.empty(steps, dim, dtype=dtype, device=device)  # Q_m as rows, (m, n)
    alphas: list[float] = []
    betas: list[float] = []
    q = _unit(gaussian((dim,), gen, dtype, device))
    beta = 0.0
    converged = False
    for j in range(steps):
        basis[j] = q
        w = matvec(q)
        # One host sync per step: alpha and beta drive the stopping rule.
        alpha = float(torch.dot(w, q))
        w = w - alpha * q - (beta * basis[j - 1] if j else 0.0)
        w, beta = _orthogonalize(w, basis[: j + 1])
        alphas.append(alpha)
        theta, s = torch.linalg.eigh(_t(alphas, betas))
        wanted = select(theta, k, which)
        every_residual = beta * s[-1].abs()  # (m,)
        residuals = every_residual[wanted]
        scale = ZERO_SCALE * float(theta.abs().max())
        limit = tol * torch.clamp(theta[wanted].abs(), min=scale)
        errors = torch.minimum(residuals, residuals**2 / _gaps(theta, every_residual)[wanted])
        # An invariant subspace (beta ~ 0) makes every residual vanish, yet eigenvalues of
        # higher multiplicity (or outside the start's span) may be missing: restart there.
        breakdown = beta <= 100 * torch.finfo(dtype).eps * max(scale / ZERO_SCALE, 1e-300)
        done = len(wanted) == k and bool((errors <= limit).all())
        if (done and not breakdown) or j + 1 == steps:
            converged = done
            break
        if breakdown:
            # Restart from a random vector orthogonal to the basis (T becomes block diagonal).
            w, _ = _orthogonalize(gaussian((dim,), gen, dtype, device), basis[: j + 1])
            beta = 0.0
            q = _unit(w)
        else:
            q = w / beta
        betas.append(beta)
    m = len(alphas)
    result_vectors = None
    if vectors:
        result_vectors = (s[:, wanted].T.to(dtype) @ basis[:m]).contiguous()  # (k, n)
    return LanczosResult(
        values=theta[wanted],
        vectors=result_vectors,
        residuals=residuals,
        matvecs=m,
        converged=converged or m == dim,
        alphas=torch.tensor(alphas, dtype=torch.float64),
        betas=torch.tensor(betas[: m - 1], dtype=torch.float64),
    )


def _t(alphas: list[float], betas: list[float]) -> Tensor:
    a = torch.tensor(alphas, dtype=torch.float64)
    return tridiagonal(a, torch.tensor(betas[: len(alphas) - 1], dtype=torch.float64))


def _gaps(theta: Tensor, residuals: Tensor) -> Tensor:
    """Lower bounds on each Ritz value's distance to the rest of the spectrum, (m,).

    min_j |theta_i - theta_j| - r_j: every other Ritz value theta_j has an eigenvalue within
    r_j of it. Zero when there is a single Ritz value (no gap known: the bound is r_i).
    """
    distance = (theta[:, None] - theta[None, :]).abs() - residuals[None, :]  # (m, m)
    distance.fill_diagonal_(float("inf"))
    gaps = distance.min(dim=1).values.clamp(min=0.0)
    return gaps if len(theta) > 1 else torch.zeros_like(theta)


def _orthogonalize(w: Tensor, basis: Tensor) -> tuple[Tensor, float]:
    """w minus its projection on the rows of `basis`, and its norm (classical Gram-Schmidt).

    A second pass runs only when the first removed most of w (norm ratio below 1/sqrt(2),
    Kahan's criterion in Parlett 1998, sec. 6.9): reading the basis is the costly part.
    """
    norm = float(w.norm())
    for _ in range(2):
        w = w - basis.T @ (basis @ w)
        before, norm = norm, float(w.norm())
        if norm > 0.7071 * before:
            break
    return w, norm


def _unit(v: Tensor) -> Tensor:
    return v / v.norm()
