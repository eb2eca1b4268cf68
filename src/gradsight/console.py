"""Terminal output of training results (rich tables)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from rich.console import Console
from rich.table import Table

from gradsight.train import FitResult

BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 24) -> str:
    """The curve as one line of block characters: `width` chunk means scaled min..max."""
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if finite.size == 0:
        return ""
    chunks = [chunk.mean() for chunk in np.array_split(finite, min(width, finite.size))]
    low, high = min(chunks), max(chunks)
    span = (high - low) or 1.0
    return "".join(BLOCKS[round((c - low) / span * (len(BLOCKS) - 1))] for c in chunks)


def print_results(console: Console, results: Mapping[str, FitResult]) -> None:
    """One row per run: loss at the first and last step, its curve, final metrics."""
    table = Table(title="training results", title_justify="left")
    table.add_column("run", no_wrap=True, overflow="ellipsis")
    for column in ("steps", "loss", "curve", "test", "time"):
        table.add_column(column, justify="left" if column == "curve" else "right", no_wrap=True)
    for name, result in results.items():
        loss = result.history.series("loss")
        metrics = result.metrics
        metric = next(k for k in metrics if k.startswith("test_") and k != "test_loss")
        label = metric.removeprefix("test_")
        value = metrics[metric]
        shown = f"acc {value:.1%}" if label == "accuracy" else f"{label} {value:.4g}"
        if metrics["diverged"]:
            shown += " [red](diverged)[/]"
        table.add_row(
            name,
            str(metrics["steps"]),
            f"{loss.iloc[0]:.3g} → {loss.iloc[-1]:.3g}",
            sparkline(loss.tolist(), width=16),
            shown,
            f"{metrics['time_s']:.3g}s",
        )
    console.print(table)
