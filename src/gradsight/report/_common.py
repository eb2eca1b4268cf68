"""Helpers shared by the figure functions: a pyplot-free Figure, layer colours, PNG bytes."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gradsight.telemetry import History

# Plotted on a log scale, a value <= 0 has no place; it is drawn at this floor (visible, flat).
LOG_FLOOR = 1e-12


def new_figure(fig: Figure | None, width: float = 8.0, height: float = 4.0) -> Figure:
    """`fig` cleared, or a new Figure on an Agg canvas.

    The new Figure is not registered with pyplot: no global state, and nothing to close (it is
    freed with its last reference). The user's own matplotlib backend is left alone.
    """
    if fig is None:
        fig = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(fig)
        return fig
    fig.clear()
    return fig


def has(history: History, name: str) -> bool:
    """Whether the history holds rows for `name`."""
    return name in set(history.frame()["name"])


def layer_colours(n: int) -> list[tuple[float, float, float, float]]:
    """One colour per layer, input (dark) to output (light), from viridis."""
    cmap = matplotlib.colormaps["viridis"]
    return [cmap(x) for x in np.linspace(0.0, 0.9, max(n, 1))][:n]


def ordered_table(history: History, name: str) -> pd.DataFrame:
    """`history.table(name)` with its columns in `history.layers(name)` order, steps sorted."""
    table = history.table(name)
    return table[[c for c in history.layers(name) if c in table.columns]].sort_index()


def positive(values: np.ndarray) -> np.ndarray:
    """Values floored at LOG_FLOOR (NaN kept), for a log axis."""
    return np.where(np.isnan(values), np.nan, np.maximum(values, LOG_FLOOR))


def legend_if_few(ax, n: int, limit: int = 12) -> None:
    """A legend only when it stays readable; otherwise the colours say input -> output."""
    if 0 < n <= limit:
        ax.legend(fontsize="small", ncols=1 if n <= 6 else 2)


def to_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
