"""Terminal output of training results (rich tables)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from gradsight.diagnosis import Finding
from gradsight.doctor import Prescription
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


SEVERITY_STYLES = {"critical": "bold red", "warning": "bold yellow", "info": "bold blue"}


def print_findings(console: Console, findings: Sequence[Finding]) -> None:
    """Each finding: severity, kind, the sentence with its numbers, the layers, the
    mechanism, and the remedies ranked (every text escaped: layer names hold brackets)."""

    def indented(markup: str, style: str = "") -> None:
        # Wrapped by hand so that continuation lines keep the indent (and no trailing padding).
        text = Text.from_markup(markup, style=style)
        for line in text.wrap(console, max(console.width - 2, 20)):
            console.print(Text("  ") + line)

    if not findings:
        console.print("[bold green]no problem found[/]")
        return
    for finding in findings:
        style = SEVERITY_STYLES[finding.severity]
        console.print(
            f"[{style}]{finding.severity.upper()}[/] [bold]{finding.kind}[/]: "
            f"{escape(finding.summary)}"
        )
        if finding.layers:
            indented(f"layers: {escape(', '.join(finding.layers))}", style="dim")
        if finding.explanation:
            indented(escape(finding.explanation))
        for rank, remedy in enumerate(finding.remedies, 1):
            reason = f" ({escape(remedy.reason)})" if remedy.reason else ""
            indented(f"{rank}. [cyan]{remedy.name}[/]: {escape(remedy.description)}{reason}")
        console.print()


def print_trials(console: Console, prescription: Prescription) -> None:
    """The doctor's trials: remedy, test metric, improvement with its interval, what remains."""
    metric = f"test_{prescription.metric}"
    table = Table(title="remedy trials (mean ± sd over seeds)", title_justify="left")
    table.add_column("remedy", no_wrap=True)
    table.add_column(metric.replace("_", " "), justify="right", no_wrap=True)
    table.add_column("improvement [95% interval]", justify="right", no_wrap=True)
    table.add_column("findings left", justify="right")
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
    console.print(table)
