"""A `FitResult` as HTML for a notebook: the final metrics, the run directory, then its
History (statistics recorded and the gradient-flow figure). Every text is escaped."""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING, Any

from gradsight.telemetry.history_html import history_html

if TYPE_CHECKING:
    from gradsight.train.fit import FitResult

FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:13px;color:#1d2430"
CELL = "text-align:left;padding:2px 14px 2px 0;vertical-align:top"
CODE = "font-family:ui-monospace,Menlo,Consolas,monospace;background:#eef0f4;padding:0 3px"


def fit_result_html(result: FitResult) -> str:
    """The metrics as a table under a one-line headline, then the History's display."""
    metrics = result.metrics
    headline = f"<strong>FitResult</strong>: {escape(_value(metrics.get('steps')))} steps"
    if "time_s" in metrics:
        headline += f" in {escape(_value(metrics['time_s']))} s"
    if metrics.get("diverged"):
        headline += (
            ' <strong style="color:#c62828">(diverged: a non-finite loss stopped it)</strong>'
        )
    if result.run_dir is not None:
        headline += f', run directory <code style="{CODE}">{escape(str(result.run_dir))}</code>'
    rows = "".join(
        f'<tr><td style="{CELL}"><code style="{CODE}">{escape(str(key))}</code></td>'
        f'<td style="{CELL}">{escape(_value(value))}</td></tr>'
        for key, value in metrics.items()
        if key not in ("steps", "time_s")
    )
    return (
        f'<div style="{FONT}"><p style="margin:0 0 6px">{headline}</p>'
        f'<table style="border-collapse:collapse;margin:0 0 8px">{rows}</table></div>\n'
        + history_html(result.history)
    )


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)
