"""Figures of what flows through the layers: activation statistics, histograms over time, and
the gradient w.r.t. a recurrent net's hidden state over time.

Every function takes a `History` (and optionally a Figure to draw into) and returns the
Figure, or None when the metrics it needs were not recorded.
"""

from __future__ import annotations

import math
import re

import numpy as np
from matplotlib.figure import Figure

from gradsight.drawing import (
    layer_colours,
    legend_if_few,
    log_plot,
    new_figure,
    ordered_table,
)
from gradsight.telemetry import History
from gradsight.telemetry.stats import HISTOGRAM_BINS

ACTIVATION_STATS = {
    "act/mean": "mean",
    "act/std": "standard deviation",
    "act/saturated": "saturated fraction (sigmoid/tanh)",
    "act/dead": "dead-unit fraction (ReLU family)",
}
HISTOGRAM_NAMES = tuple(f"act/hist/{i:02d}" for i in range(HISTOGRAM_BINS))
# The watch names one hidden-state tap per time step `TAP[t]` (gradsight RNNs' HiddenStateTap).
TAP_LAYER = re.compile(r"^(?P<tap>.+)\[(?P<t>\d+)\]$")


def activation_stats_figure(history: History, fig: Figure | None = None) -> Figure | None:
    """Small multiples, one panel per statistic (mean, std, saturated, dead), one line per
    layer coloured from input (dark) to output (light)."""
    present = [n for n in ACTIVATION_STATS if n in history]
    if not present:
        return None
    cols = min(2, len(present))
    rows = math.ceil(len(present) / cols)
    fig = new_figure(fig, width=5.0 * cols, height=3.2 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, name in zip(axes, present, strict=False):
        table = ordered_table(history, name)
        colours = layer_colours(len(table.columns))
        for layer, colour in zip(table.columns, colours, strict=True):
            ax.plot(table.index, table[layer], color=colour, lw=1.0, label=layer)
        if name in ("act/saturated", "act/dead"):
            ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{name}: {ACTIVATION_STATS[name]}", fontsize="medium")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        legend_if_few(ax, len(table.columns), limit=8)
    for ax in axes[len(present) :]:
        ax.set_visible(False)
    return fig


def activation_histograms_figure(history: History, fig: Figure | None = None) -> Figure | None:
    """One image per layer: steps across, histogram bins up, colour = fraction of values.

    The bins are fixed per activation kind (`telemetry.stats.HISTOGRAM_RANGES`): [0, 1] for
    sigmoid, [-1, 1] for tanh, [-4, 4] otherwise (values outside are counted in the end bins).
    Saturation shows as mass piling into the end bins over time.
    """
    if not all(n in history for n in HISTOGRAM_NAMES):
        return None
    frame = history.frame()
    rows = frame[frame["name"].isin(HISTOGRAM_NAMES)]
    layers = history.layers(HISTOGRAM_NAMES[0])
    cols = min(4, len(layers))
    nrows = math.ceil(len(layers) / cols)
    fig = new_figure(fig, width=3.2 * cols + 1.0, height=2.4 * nrows + 0.4)
    axes = fig.subplots(nrows, cols, squeeze=False, sharey=True)
    vmax = float(np.nanmax(rows["value"].to_numpy(dtype=float), initial=0.0)) or 1.0
    image = None
    for ax, layer in zip(axes.ravel(), layers, strict=False):
        wide = rows[rows["layer"] == layer].pivot_table(
            index="step", columns="name", values="value"
        )
        wide = wide.reindex(columns=list(HISTOGRAM_NAMES)).sort_index()  # (steps, bins)
        steps = wide.index.to_numpy()
        image = ax.pcolormesh(
            steps,
            np.arange(HISTOGRAM_BINS),
            wide.to_numpy(dtype=float).T,  # (bins, steps)
            shading="nearest",
            cmap="viridis",
            vmin=0.0,
            vmax=vmax,  # one scale for all layers, so they compare
        )
        ax.set_title(layer, fontsize="small")
        ax.set_xlabel("step", fontsize="small")
        ax.set_yticks([0, HISTOGRAM_BINS // 2, HISTOGRAM_BINS - 1])
        ax.tick_params(labelsize="x-small")
    for ax in axes[:, 0]:
        ax.set_ylabel("bin (low → high)", fontsize="small")
    for ax in axes.ravel()[len(layers) :]:
        ax.set_visible(False)
    fig.colorbar(image, ax=axes, label="fraction of values", shrink=0.8)
    fig.suptitle("Activation histograms over time")
    return fig


def temporal_gradient_flow(history: History, fig: Figure | None = None) -> Figure | None:
    """‖∂L/∂h_t‖ against the time step t, at the first and the last logged step (log scale).

    Gradients vanishing backwards in time (Bengio et al. 1994) show as a line falling
    towards t = 0: early inputs get no credit.
    """
    if "act/grad_norm" not in history:
        return None
    taps: dict[str, list[tuple[int, str]]] = {}
    for layer in history.layers("act/grad_norm"):
        match = TAP_LAYER.match(layer)
        if match:
            taps.setdefault(match["tap"], []).append((int(match["t"]), layer))
    if not taps:
        return None
    table = ordered_table(history, "act/grad_norm")
    first, last = table.index[0], table.index[-1]
    fig = new_figure(fig, width=7.0, height=3.8)
    ax = fig.subplots()
    for tap, items in taps.items():
        items.sort()
        times = [t for t, _ in items]
        columns = [layer for _, layer in items]
        label = "" if len(taps) == 1 else f"{tap}, "
        steps = [(first, "C0")] if first == last else [(first, "C0"), (last, "C3")]
        for step, colour in steps:
            values = table.loc[step, columns].to_numpy(dtype=float)
            log_plot(ax, times, values, "o-", ms=3, color=colour, label=f"{label}step {step}")
    ax.set_yscale("log")
    ax.set_xlabel("time step t")
    ax.set_ylabel("‖∂L/∂h_t‖")
    ax.set_title("Gradient flow through time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


__all__ = [
    "activation_histograms_figure",
    "activation_stats_figure",
    "temporal_gradient_flow",
]
