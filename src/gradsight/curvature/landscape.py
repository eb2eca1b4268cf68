"""Loss along random filter-normalised directions (Li, Xu, Taylor, Studer & Goldstein 2018).

A random Gaussian direction d is rescaled filter by filter, d_f <- d_f ||theta_f|| / ||d_f||,
where a filter is one output unit's weights (a row of a Linear weight, one output channel
of a convolution), so the slice is comparable across layers and scale-invariant networks;
1-D parameters (biases, norm scales) get d = 0, as in the paper. The loss is then evaluated
at theta + a d1 (dims=1) or theta + a d1 + b d2 (dims=2) on a grid of a, b in [-span, span].
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import Tensor, nn

from gradsight.checks import check_int, check_positive
from gradsight.curvature._state import preserved
from gradsight.curvature._vectors import generator, trainable
from gradsight.curvature.hvp import LossFn, as_batches
from gradsight.errors import InputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class Landscape(NamedTuple):
    """Attributes: alphas (steps,), betas ((steps,) or None for dims=1), losses ((steps,) or
    (steps, steps) indexed [alpha, beta])."""

    alphas: Tensor
    betas: Tensor | None
    losses: Tensor


def filter_normalized(params: list[Tensor], gen: torch.Generator) -> list[Tensor]:
    """A random direction with ||d_f|| = ||theta_f|| for every filter f; zero on 1-D params."""
    out = []
    for p in params:
        d = torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device)
        if p.dim() <= 1:
            out.append(torch.zeros_like(p))
            continue
        rows, theta = d.reshape(len(d), -1), p.detach().reshape(len(p), -1)  # (filters, fan_in)
        scale = theta.norm(dim=1, keepdim=True) / rows.norm(dim=1, keepdim=True).clamp(min=1e-12)
        out.append((rows * scale).reshape(p.shape))
    return out


def _mean_loss(model: nn.Module, loss_fn: LossFn, data: Any) -> float:
    batches, _ = as_batches(data)
    total, count = 0.0, 0
    for inputs, targets in batches:
        total += float(loss_fn(model(inputs), targets)) * len(targets)
        count += len(targets)
    return total / count


@torch.no_grad()
def landscape(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    *,
    dims: int = 1,
    steps: int = 21,
    span: float = 1.0,
    seed: int | torch.Generator = 0,
) -> Landscape:
    """Loss on a 1-D line or 2-D plane through the current weights (Li et al. 2018).

    The weights, buffers and RNG are restored afterwards.

    Args:
        model: Any nn.Module, in the mode to evaluate (eval for batch norm's running stats).
        loss_fn: `loss_fn(model(inputs), targets)`, a scalar.
        data: One `(inputs, targets)` batch or a re-iterable of them.
        dims: 1 (a line) or 2 (a plane).
        steps: Grid points per axis.
        span: The grid covers [-span, span] in units of the filter-normalised directions.
        seed: Seed or torch.Generator of the directions.
    """
    if dims not in (1, 2):
        raise InputError(f"dims must be 1 or 2, got {dims!r}")
    check_int("steps", steps, 2)
    check_positive("span", span)
    params = trainable(model)
    gen = generator(seed)
    directions = [filter_normalized(params, gen) for _ in range(dims)]
    origin = [p.detach().clone() for p in params]
    coords = torch.linspace(-span, span, steps, dtype=torch.float64)
    grid = (
        [(float(a),) for a in coords]
        if dims == 1
        else [(float(a), float(b)) for a in coords for b in coords]
    )
    losses = []
    with preserved(model):
        try:
            for point in grid:
                for p, p0, *ds in zip(params, origin, *directions, strict=True):
                    p.copy_(p0)
                    for c, d in zip(point, ds, strict=True):
                        p.add_(d, alpha=c)
                losses.append(_mean_loss(model, loss_fn, data))
        finally:
            for p, p0 in zip(params, origin, strict=True):
                p.copy_(p0)
    values = torch.tensor(losses, dtype=torch.float64)
    if dims == 1:
        return Landscape(coords, None, values)
    return Landscape(coords, coords, values.reshape(steps, steps))


def plot_landscape(result: Landscape, path: str | Path | None = None) -> Figure:
    """Line (dims=1) or filled contour (dims=2) of the loss slice; saved as PNG if `path`."""
    # A bare Figure (Agg canvas), not pyplot: no global figure state is left behind.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 4))
    axes = figure.subplots()
    if result.betas is None:
        axes.plot(result.alphas.numpy(), result.losses.numpy())
        axes.set_xlabel("alpha (filter-normalised direction)")
        axes.set_ylabel("loss")
    else:
        mesh = axes.contourf(
            result.alphas.numpy(), result.betas.numpy(), result.losses.T.numpy(), levels=30
        )
        figure.colorbar(mesh, ax=axes, label="loss")
        axes.set_xlabel("alpha")
        axes.set_ylabel("beta")
    axes.set_title("Loss landscape (Li et al. 2018)")
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure
