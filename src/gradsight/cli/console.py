"""Terminal output of the CLI: rich tables in one style, findings, and JSON for scripts.

Tables never cut a number: on a terminal a cell too wide for its column folds onto the next
line; off a terminal (a CI log, a pipe, a file) a table is printed at its natural width, so
each row stays on one line however narrow the console believes it is.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from gradsight.diagnosis import Finding
    from gradsight.doctor import Prescription
    from gradsight.playground import SummaryRow
    from gradsight.train import FitResult

BLOCKS = "▁▂▃▄▅▆▇█"
# Off a terminal a table is laid out on a console this wide, so it takes its natural width.
UNBOUNDED_WIDTH = 100_000


def make_table(
    columns: Sequence[str | tuple[str, str]], title: str | None = None, *, lines: bool = False
) -> Table:
    """An empty table in the CLI's one style: title on the left, bold header, and every
    column folding (never cutting) a cell that is wider than it.

    Args:
        columns: Column names, or (name, justify) pairs with justify "left" | "right".
        title: Printed above the table.
        lines: Rule lines between rows (for tables of prose).
    """
    table = Table(title=title, title_justify="left", show_lines=lines)
    for column in columns:
        name, justify = (column, "left") if isinstance(column, str) else column
        table.add_column(name, justify=justify, overflow="fold")
    return table


def print_table(console: Console, table: Table) -> None:
    """Print a table; off a terminal at its natural width, every row on one line."""
    if console.is_terminal:
        console.print(table)
        return
    # rich lays tables out to the console's width (80 columns when it is not a terminal, so
    # a wide table squeezed its cells to "acc 10…"); a log has no width to respect.
    width = console.width
    console.width = UNBOUNDED_WIDTH
    try:
        console.print(table)
    finally:
        console.width = width


def sparkline(values: Sequence[float], width: int = 24) -> str:
    """The curve as one line of block characters: `width` chunk means scaled min..max."""
    import numpy as np

    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if finite.size == 0:
        return ""
    chunks = [chunk.mean() for chunk in np.array_split(finite, min(width, finite.size))]
    low, high = min(chunks), max(chunks)
    span = (high - low) or 1.0
    return "".join(BLOCKS[round((c - low) / span * (len(BLOCKS) - 1))] for c in chunks)


def print_results(console: Console, results: Mapping[str, FitResult]) -> None:
    """One row per run: loss at the first and last step, its curve, final metrics."""
    table = make_table(
        [
            "run",
            ("steps", "right"),
            ("loss", "right"),
            "curve",
            ("test", "right"),
            ("time", "right"),
        ],
        title="training results",
    )
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
    print_table(console, table)


def print_trials(console: Console, prescription: Prescription) -> None:
    """The doctor's trials: remedy, test metric, improvement with its interval, what remains."""
    metric = f"test_{prescription.metric}"
    table = make_table(
        [
            "remedy",
            (metric.replace("_", " "), "right"),
            ("improvement [95% interval]", "right"),
            ("findings left", "right"),
        ],
        title="remedy trials (mean ± sd over seeds)",
    )
    for row in prescription.trials.itertuples(index=False):
        values = row._asdict()
        style = "bold green" if values["remedy"] == prescription.best else ""
        table.add_row(
            escape(values["remedy"]),
            f"{values[metric]:.3g} ± {values[metric + '_std']:.2g}",
            f"{values['improvement']:+.3g} [{values['ci_low']:+.3g}, {values['ci_high']:+.3g}]",
            str(0 if values["remaining"] == "none" else len(str(values["remaining"]).split(", "))),
            style=style,
        )
    print_table(console, table)


def print_playground(console: Console, rows: Sequence[SummaryRow]) -> None:
    """The playground's summary, one row per optimizer (cells as in `format_table`)."""
    from gradsight.playground.summary import summary_cells

    header, cells = summary_cells(rows)
    table = make_table([header[0], *((name, "right") for name in header[1:])], title="optimizers")
    for row in cells:
        table.add_row(*map(escape, row))
    print_table(console, table)


def plain(value: Any) -> Any:
    """`value` as plain JSON data: tuples as lists, numpy scalars as Python numbers, and
    NaN or infinite floats as None (JSON has no such numbers)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def to_json(value: Any) -> str:
    """Indented, strict JSON text of `value` (see `plain`; other objects as their str)."""
    return json.dumps(plain(value), indent=2, allow_nan=False, default=str)


def findings_json(findings: Sequence[Finding]) -> str:
    """Findings as a JSON list: kind, severity, layers, steps, summary, evidence,
    explanation and remedies of each (the records of `findings.json`)."""
    return to_json([finding.to_dict() for finding in findings])
