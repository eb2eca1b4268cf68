"""What every package that draws shares: a pyplot-free Figure, PNG bytes and data URIs,
layer colours, and log axes that show small values as they are."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from gradsight.telemetry import History


# On a log axis a zero, a negative or an infinite value has no place. `log_plot` draws it as a
# hollow marker at a floor one decade below the series' smallest positive value (this floor
# when the series has none); finite positive values, however small, are drawn as they are.
LOG_FLOOR = 1e-12
FLOORED_LABEL = "0 or non-finite (hollow, drawn at a floor)"


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


def layer_colours(n: int) -> list[tuple[float, float, float, float]]:
    """One colour per layer, input (dark) to output (light), from viridis."""
    cmap = matplotlib.colormaps["viridis"]
    return [cmap(x) for x in np.linspace(0.0, 0.9, max(n, 1))][:n]


def ordered_table(history: History, name: str) -> pd.DataFrame:
    """`history.table(name)` with its columns in `history.layers(name)` order, steps sorted."""
    table = history.table(name)
    return table[[c for c in history.layers(name) if c in table.columns]].sort_index()


def positive(values: np.ndarray) -> np.ndarray:
    """The values a log axis can show: finite positive values as they are, the rest NaN (a gap;
    `log_plot` marks them)."""
    values = np.asarray(values, dtype=float)
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


def floored(values: np.ndarray) -> tuple[np.ndarray, float]:
    """Which values a log axis cannot show (zero, negative, infinite; NaN is missing, not
    floored), and the floor they are drawn at: a decade below the smallest positive value."""
    values = np.asarray(values, dtype=float)
    shown = positive(values)
    mask = ~np.isnan(values) & np.isnan(shown)
    floor = np.nanmin(shown) / 10 if np.any(~np.isnan(shown)) else LOG_FLOOR
    return mask, float(floor)


def log_plot(ax, x, values, *args, **kwargs):
    """`ax.plot(x, values, ...)` for a log y-axis: finite positive values drawn as they are,
    the others marked by `mark_floored` in the line's colour. Returns the line."""
    (line,) = ax.plot(x, positive(values), *args, **kwargs)
    mark_floored(ax, x, values, line.get_color())
    return line


def mark_floored(ax, x, values, colour) -> int:
    """Hollow markers at the `floored` floor for the values a log axis cannot show, labelled
    FLOORED_LABEL once per axes. Returns how many were marked."""
    x, values = np.asarray(x), np.asarray(values, dtype=float)
    mask, floor = floored(values)
    if mask.any():
        label = None if getattr(ax, "_gradsight_floor_labelled", False) else FLOORED_LABEL
        ax._gradsight_floor_labelled = True
        ax.plot(x[mask], np.full(mask.sum(), floor), "o", mfc="none", color=colour, label=label)
    return int(mask.sum())


def legend_if_few(ax, n: int, limit: int = 12) -> None:
    """A legend only when it stays readable; otherwise the colours say input -> output."""
    if 0 < n <= limit:
        ax.legend(fontsize="small", ncols=1 if n <= 6 else 2)


def to_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def png_data_uri(png: bytes) -> str:
    """PNG bytes as a `data:image/png;base64,...` URI, for a page that needs no other file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
