"""Figures of the optimisation itself: loss, gradient flow, update/weight ratio, curvature.

Every function takes a `History` (and optionally a Figure to draw into) and returns the
Figure, or None when the metrics it needs were not recorded.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from gradsight.drawing import (
    layer_colours,
    legend_if_few,
    log_plot,
    mark_floored,
    new_figure,
    ordered_table,
    positive,
)
from gradsight.telemetry import History

# Karpathy's rule of thumb (CS231n, "Babysitting the learning process"): an update about 1e-3
# of the weight's size; far below learns slowly, far above is unstable.
UPDATE_RATIO_GUIDE = 1e-3


def _steps_values(history: History, name: str) -> tuple[np.ndarray, np.ndarray]:
    series = history.series(name).sort_index()
    return series.index.to_numpy(), series.to_numpy(dtype=float)


def _log_worthy(values: np.ndarray) -> bool:
    """Positive values spanning more than a factor of 3 (a log axis over less reads badly)."""
    finite = values[np.isfinite(values)]
    return finite.size > 0 and bool((finite > 0).all()) and finite.max() > 3 * finite.min()


def loss_figure(history: History, fig: Figure | None = None) -> Figure | None:
    """Training loss over steps, with the test loss, and other `test/*` metrics beside it.

    The loss axis is logarithmic when every finite loss is positive and they span more than a
    factor of 3. Non-finite losses are
    left out of the line (the `non_finite` finding names them).
    """
    if "loss" not in history:
        return None
    others = [n for n in history.names() if n.startswith("test/") and n != "test/loss"]
    fig = new_figure(fig, width=10.0 if others else 7.0, height=3.6)
    axes = fig.subplots(1, 2 if others else 1, squeeze=False)[0]
    ax = axes[0]
    steps, values = _steps_values(history, "loss")
    ax.plot(steps, values, lw=1.0, color="C0", label="train loss")
    everything = values
    if "test/loss" in history:
        test_steps, test_values = _steps_values(history, "test/loss")
        ax.plot(test_steps, test_values, "o-", ms=4, color="C1", label="test loss")
        everything = np.concatenate([values, test_values])
    if _log_worthy(everything):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    if others:
        ax = axes[1]
        for i, name in enumerate(others):
            s, v = _steps_values(history, name)
            ax.plot(s, v, "o-", ms=4, color=f"C{i + 2}", label=name)
        ax.set_xlabel("step")
        ax.set_ylabel("value")
        ax.set_title("Test metrics")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return fig


def gradient_flow_heatmap(history: History, fig: Figure | None = None) -> Figure | None:
    """Per-layer gradient norm over steps: rows are layers (input at the top), colour is
    log10 ‖∇W‖. Vanishing gradients show as a dark band at the top (early layers)."""
    if "grad/norm" not in history:
        return None
    table = ordered_table(history, "grad/norm")  # (steps, layers)
    layers = list(table.columns)
    fig = new_figure(fig, width=9.0, height=max(2.5, 0.9 + 0.28 * len(layers)))
    ax = fig.subplots()
    values = table.to_numpy(dtype=float).T  # (layers, steps)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(np.where(values > 0, values, np.nan))
    mesh = ax.pcolormesh(
        table.index.to_numpy(), np.arange(len(layers)), logs, shading="nearest", cmap="magma"
    )
    fig.colorbar(mesh, ax=ax, label="log10 gradient norm")
    ax.set_yticks(np.arange(len(layers)), layers, fontsize="small")
    ax.invert_yaxis()  # input layer at the top
    ax.set_xlabel("step")
    ax.set_ylabel("layer (input → output)")
    ax.set_title("Gradient flow: log10 ‖∇W‖ per layer")
    return fig


def gradient_flow_bars(history: History, fig: Figure | None = None) -> Figure | None:
    """Per-layer gradient norm at the first and the last logged step, on a log scale."""
    if "grad/norm" not in history:
        return None
    table = ordered_table(history, "grad/norm")
    layers = list(table.columns)
    first, last = table.index[0], table.index[-1]
    fig = new_figure(fig, width=max(6.0, 0.5 * len(layers) + 2.0), height=3.8)
    ax = fig.subplots()
    x = np.arange(len(layers))
    rows = [(first, "C0")] if first == last else [(first, "C0"), (last, "C3")]
    width = 0.8 / len(rows)
    for i, (step, colour) in enumerate(rows):
        values = table.loc[step].to_numpy(dtype=float)
        offset = (i - (len(rows) - 1) / 2) * width
        ax.bar(x + offset, positive(values), width, color=colour, label=f"step {step}")
        mark_floored(ax, x + offset, values, colour)  # a log bar cannot start at 0
    ax.set_yscale("log")
    ax.set_xticks(x, layers, rotation=45, ha="right", fontsize="small")
    ax.set_xlabel("layer (input → output)")
    ax.set_ylabel("gradient norm")
    ax.set_title("Gradient norm per layer, first and last logged step")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def update_ratio_figure(history: History, fig: Figure | None = None) -> Figure | None:
    """‖ΔW‖ / ‖W‖ per layer over steps, log scale, with the 1e-3 rule-of-thumb line."""
    if "update/ratio" not in history:
        return None
    table = ordered_table(history, "update/ratio")
    fig = new_figure(fig, width=8.0, height=3.8)
    ax = fig.subplots()
    for layer, colour in zip(table.columns, layer_colours(len(table.columns)), strict=True):
        log_plot(ax, table.index, table[layer].to_numpy(dtype=float), color=colour, label=layer)
    ax.axhline(UPDATE_RATIO_GUIDE, color="0.3", ls="--", lw=1.0, label="1e-3 guide")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("‖ΔW‖ / ‖W‖")
    ax.set_title("Update / weight ratio per layer")
    ax.grid(alpha=0.3)
    legend_if_few(ax, len(table.columns) + 1)
    return fig


CURVATURE = ("curv/lambda_max", "curv/lambda_min", "curv/trace")


def curvature_figure(history: History, fig: Figure | None = None) -> Figure | None:
    """Extreme Hessian eigenvalues (and the trace, when recorded) over steps.

    A negative λ_min with a small gradient marks a saddle point (Dauphin et al. 2014).
    """
    present = [n for n in CURVATURE if n in history]
    if not present:
        return None
    lambdas = [n for n in present if n != "curv/trace"]
    panels = [p for p in (lambdas, ["curv/trace"] if "curv/trace" in present else []) if p]
    fig = new_figure(fig, width=5.0 * len(panels), height=3.6)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, names in zip(axes, panels, strict=True):
        for i, name in enumerate(names):
            steps, values = _steps_values(history, name)
            ax.plot(steps, values, "o-", ms=3, color=f"C{i}", label=name.removeprefix("curv/"))
        if names == ["curv/trace"]:
            ax.set_ylabel("trace of the Hessian")
            ax.set_title("Hessian trace")
        else:
            ax.axhline(0.0, color="0.5", lw=0.8)
            ax.set_ylabel("eigenvalue")
            ax.set_title("Hessian extreme eigenvalues")
            ax.legend(fontsize="small")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    return fig


__all__ = [
    "curvature_figure",
    "gradient_flow_bars",
    "gradient_flow_heatmap",
    "loss_figure",
    "update_ratio_figure",
]
