"""Small readers of a History shared by the rules."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from torch import nn

from gradsight.data.task import Task
from gradsight.diagnosis.thresholds import LOSS_WINDOW
from gradsight.telemetry.history import History

TIME_STEP = re.compile(r"^(?P<tap>.+)\[(?P<t>\d+)\]$")


@dataclass(frozen=True)
class Context:
    """What a rule may look at besides the History (each part optional)."""

    model: nn.Module | None = None
    task: Task | None = None


def has(history: History, name: str) -> bool:
    """Whether the History holds metric `name`."""
    return name in history.names()


def table(history: History, name: str, last: float = 1.0) -> pd.DataFrame:
    """Wide table step x layer of one metric, restricted to the last `last` fraction of steps."""
    wide = history.table(name)
    if last < 1.0 and len(wide):
        wide = wide.iloc[int(len(wide) * (1 - last)) :]
    return wide


def depth_layers(history: History) -> list[str]:
    """Weight layers in forward order: those with gradient norms and a measured output
    (Linear/Conv), or all layers with gradient norms when activations were not recorded."""
    layers = history.layers("grad/norm")
    measured = set(history.layers("act/grad_norm")) | set(history.layers("act/mean"))
    inner = [layer for layer in layers if layer in measured]
    return inner if len(inner) >= 2 else layers


def error_norms(history: History) -> tuple[pd.DataFrame, str, list[str]]:
    """Norms of the back-propagated error per weight layer (input to output), step x layer.

    The gradient at each Linear/Conv output, dL/dz_l (`act/grad_norm`), is the quantity of
    the theory; where activations were not recorded, the layers' parameter gradient norms
    stand in (they also carry the layer's input scale).

    Returns:
        The table, the metric it comes from, and the layers.
    """
    layers = depth_layers(history)
    if has(history, "act/grad_norm") and all(
        layer in history.layers("act/grad_norm") for layer in layers
    ):
        return table(history, "act/grad_norm")[layers].dropna(), "act/grad_norm", layers
    return table(history, "grad/norm")[layers], "grad/norm", layers


def median_ratio(norms: pd.DataFrame, first: str, last: str) -> tuple[float, int] | None:
    """Median over steps of norms[first] / norms[last] (finite ratios only), and their count."""
    ratios = (norms[first] / norms[last]).replace([np.inf, -np.inf], np.nan).dropna()
    return (float(ratios.median()), len(ratios)) if len(ratios) else None


def time_steps(history: History) -> list[str]:
    """The `hidden_tap[t]` layers of act/grad_norm, ordered by t."""
    found = [
        (m, layer) for layer in history.layers("act/grad_norm") if (m := TIME_STEP.match(layer))
    ]
    return [layer for m, layer in sorted(found, key=lambda p: int(p[0]["t"]))]


def loss_ends(history: History) -> tuple[float, float, int]:
    """Smoothed loss at the start and at the end of the run (means of the first and last
    LOSS_WINDOW of steps, finite values only), and the number of steps."""
    loss = history.series("loss").to_numpy()
    window = max(1, int(len(loss) * LOSS_WINDOW))
    start, end = loss[:window], loss[-window:]
    start, end = start[np.isfinite(start)], end[np.isfinite(end)]
    first = float(start.mean()) if start.size else float("nan")
    last = float(end.mean()) if end.size else float("inf")
    return first, last, len(loss)


def fmt(value: float) -> str:
    """A number for a sentence: 3 significant digits, scientific when small or large."""
    return f"{value:.3g}"
