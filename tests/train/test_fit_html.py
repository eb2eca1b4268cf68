"""A FitResult's notebook display: its metrics, its run directory (escaped), then its History."""

from __future__ import annotations

import math
import re
from html import unescape
from pathlib import Path

from gradsight.telemetry import History
from gradsight.train import FitResult


def _history() -> History:
    history = History()
    for step in range(3):
        history.log(step, "loss", 1.0 / (step + 1))
        history.log(step, "grad/norm", 0.1 * (step + 1), layer="fc1")
    return history


def test_metrics_table_then_history() -> None:
    metrics = {"train_loss": 0.123456, "test_accuracy": 0.875, "test_loss": math.nan,
               "steps": 3, "time_s": 0.42, "diverged": False}  # fmt: skip
    html = FitResult(_history(), metrics, Path("runs/<b>x</b>"))._repr_html_()
    assert "<strong>FitResult</strong>: 3 steps in 0.42 s, run directory" in html
    assert "runs/&lt;b&gt;x&lt;/b&gt;" in html and "<b>" not in html
    cells = re.findall(r"<td[^>]*>(?:<code[^>]*>)?([^<]*)(?:</code>)?</td>", html)
    table = dict(zip(cells[0:8:2], cells[1:8:2], strict=True))
    assert table == {"train_loss": "0.1235", "test_accuracy": "0.875", "test_loss": "nan",
                     "diverged": "false"}  # fmt: skip
    assert html.index("FitResult") < html.index("<strong>History</strong>: 6 rows")
    assert "<img" in html  # the History's gradient-flow figure


def test_diverged_run_says_so() -> None:
    metrics = {"train_loss": math.inf, "steps": 2, "time_s": 0.1, "diverged": True}
    html = unescape(FitResult(_history(), metrics)._repr_html_())
    assert "(diverged: a non-finite loss stopped it)" in html and "run directory" not in html
