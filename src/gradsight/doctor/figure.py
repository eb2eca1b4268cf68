"""The doctor's figure: each remedy's improvement over the baseline, with its interval."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from gradsight.drawing import new_figure

if TYPE_CHECKING:
    from gradsight.doctor import Prescription

PROVEN, UNPROVEN, BEST = "#2e7d32", "#8a94a6", "#1b5e20"


def improvement_figure(prescription: Prescription, fig: Figure | None = None) -> Figure | None:
    """Horizontal bars: the mean paired improvement of the test metric per remedy, error bars
    from its 95% bootstrap interval (Efron 1979), the baseline at 0.

    A bar is green when its whole interval lies above 0 (a proven improvement). Returns None
    when there are no trials to plot.
    """
    trials = prescription.trials
    if trials.empty:
        return None
    trials = trials.iloc[::-1]  # best at the top
    improvement = trials["improvement"].to_numpy(dtype=float)
    low = trials["ci_low"].to_numpy(dtype=float)
    high = trials["ci_high"].to_numpy(dtype=float)
    # A diverged remedy has no improvement (nan): drawn as an empty row, named in the label.
    shown = np.nan_to_num(improvement)
    errors = np.nan_to_num(np.stack([improvement - low, high - improvement]).clip(min=0))
    colours = [
        BEST if name == prescription.best else PROVEN if lo > 0 else UNPROVEN
        for name, lo in zip(trials["remedy"], low, strict=True)
    ]
    labels = [
        name if math.isfinite(value) else f"{name} (diverged)"
        for name, value in zip(trials["remedy"], improvement, strict=True)
    ]
    fig = new_figure(fig, width=7.5, height=1.2 + 0.45 * len(trials))
    ax = fig.add_subplot()
    rows = np.arange(len(trials))
    ax.barh(rows, shown, xerr=errors, color=colours, capsize=3, height=0.6)
    ax.axvline(0.0, color="#1d2430", linewidth=1)
    ax.set_yticks(rows, labels)
    sign = "" if prescription.metric == "accuracy" else " (lower mse is better: sign flipped)"
    ax.set_xlabel(f"improvement of test {prescription.metric} over the baseline{sign}")
    ax.set_title("Improvement over the baseline (at 0), 95% bootstrap interval")
    ax.grid(axis="x", alpha=0.3)
    return fig
