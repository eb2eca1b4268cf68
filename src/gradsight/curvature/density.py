"""Eigenvalue density of the Hessian by stochastic Lanczos quadrature (SLQ).

For a unit random vector v, m Lanczos steps give T_m = S diag(theta) S^T; the nodes theta_j
with weights tau_j = S_{1j}^2 are the m-point Gauss quadrature of the spectral measure
sum_i (v . u_i)^2 delta(t - lambda_i), whose mean over v is the density (1/n) sum_i
delta(t - lambda_i) (Golub & Meurant 1994; Lin, Saad & Yang 2016). Averaging over a few
vectors and smoothing each node with a Gaussian of width sigma gives the density figure of
Ghorbani, Krishnan & Xiao 2019 ("An investigation into neural net optimization via Hessian
eigenvalue density").
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import Tensor, nn

from gradsight.checks import check_int, check_positive
from gradsight.curvature._vectors import generator
from gradsight.curvature.hvp import HessianOperator, LossFn
from gradsight.curvature.lanczos import lanczos, tridiagonal

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class Density(NamedTuple):
    """Attributes: grid (t values), density (at t, integrates to ~1), nodes and weights
    ((runs, m) quadrature nodes theta and weights tau), matvecs."""

    grid: Tensor
    density: Tensor
    nodes: Tensor
    weights: Tensor
    matvecs: int


def density(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    *,
    runs: int = 3,
    steps: int = 40,
    sigma: float | None = None,
    points: int = 512,
    seed: int | torch.Generator = 0,
) -> Density:
    """Smoothed Hessian eigenvalue density: (1/runs) sum_v sum_j tau_j N(t; theta_j, sigma^2).

    Args:
        model: Any nn.Module in the train/eval mode to differentiate.
        loss_fn: `loss_fn(model(inputs), targets)`, a scalar.
        data: One `(inputs, targets)` batch or a re-iterable of them.
        runs: Random start vectors (each costs `steps` products).
        steps: Lanczos steps per run (quadrature nodes).
        sigma: Gaussian smoothing width; None takes 1% of the spectrum's range.
        points: Grid points.
        seed: Seed or torch.Generator of the start vectors.
    """
    check_int("runs", runs, 1)
    check_int("steps", steps, 1)
    check_int("points", points, 2)
    gen = generator(seed)
    nodes, weights, matvecs = [], [], 0
    with HessianOperator(model, loss_fn, data) as op:
        for _ in range(runs):
            # tol tiny: run all `steps` steps; the quadrature wants the whole T_m.
            run = lanczos(
                op.matvec,
                op.dim,
                k=1,
                tol=1e-12,
                max_iter=steps,
                seed=gen,
                dtype=op.dtype,
                device=op.device,
            )
            theta, s = torch.linalg.eigh(tridiagonal(run.alphas, run.betas))
            nodes.append(theta)
            weights.append(s[0] ** 2)
            matvecs += run.matvecs
    width = min(len(n) for n in nodes)
    theta = torch.stack([n[:width] for n in nodes])  # (runs, m)
    tau = torch.stack([w[:width] for w in weights])
    low, high = float(theta.min()), float(theta.max())
    spread = max(high - low, 1e-12)
    sigma = 0.01 * spread if sigma is None else check_positive("sigma", sigma)
    grid = torch.linspace(low - 5 * sigma, high + 5 * sigma, points, dtype=torch.float64)
    kernel = torch.exp(-0.5 * ((grid[:, None] - theta.reshape(-1)[None, :]) / sigma) ** 2)
    values = kernel @ tau.reshape(-1) / (runs * sigma * (2 * torch.pi) ** 0.5)  # (points,)
    return Density(grid, values, theta, tau, matvecs)


def plot_density(result: Density, path: str | Path | None = None, *, log: bool = True) -> Figure:
    """Line plot of the density (log scale shows the outliers beside the bulk); PNG if `path`."""
    # A bare Figure (Agg canvas), not pyplot: no global figure state is left behind.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.5))
    axes = figure.subplots()
    values = result.density.clamp(min=1e-12) if log else result.density
    axes.plot(result.grid.numpy(), values.numpy())
    if log:
        axes.set_yscale("log")
    axes.set_xlabel("eigenvalue")
    axes.set_ylabel("density")
    axes.set_title("Hessian eigenvalue density (stochastic Lanczos quadrature)")
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure
