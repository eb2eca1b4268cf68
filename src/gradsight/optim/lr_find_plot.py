"""The figure of an LR range test: smoothed loss against learning rate, suggestions marked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from gradsight.optim.lr_find import LRFindResult

MARKERS = {"valley": ("o", "tab:green"), "steep": ("^", "tab:orange"), "minimum": ("s", "tab:red")}


def plot_lr_find(result: LRFindResult, ax: Any = None) -> Any:
    """Plot `result` on `ax` (default: a new Figure on an Agg canvas, outside pyplot's state)."""
    if ax is None:
        fig = Figure(figsize=(6, 4), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    ax.plot(result.lrs, result.losses, color="tab:blue", label="smoothed loss")
    ax.plot(result.lrs, result.raw_losses, color="tab:blue", alpha=0.25, lw=0.8, label="loss")
    finite = [v for v in result.losses if v == v and abs(v) != float("inf")]
    for name, (marker, colour) in MARKERS.items():
        lr = getattr(result, name)
        ax.axvline(lr, color=colour, ls=":", lw=1)
        ax.plot([lr], [_loss_at(result, lr)], marker, color=colour, label=f"{name} {lr:.2g}")
    ax.set_xscale("log")
    if finite:
        low, high = min(finite), max(finite)
        ax.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low) + 1e-12)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title("LR range test")
    ax.legend(fontsize=8)
    return fig


def _loss_at(result: LRFindResult, lr: float) -> float:
    """The smoothed loss at the step whose lr is closest to `lr` (log scale)."""
    from math import log

    i = min(range(len(result.lrs)), key=lambda k: abs(log(result.lrs[k]) - log(lr)))
    return result.losses[i]
