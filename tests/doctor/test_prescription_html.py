"""A Prescription's notebook display: the verdict, the figure, the trials, the findings, escaped."""

from __future__ import annotations

import base64
import dataclasses
import re
from html import unescape

import pandas as pd
import pytest

from gradsight.diagnosis import Finding
from gradsight.doctor import Prescription

EVIL = "<script>alert(1)</script>"
COLUMNS = ("remedy", "train_loss", "train_loss_std", "test_accuracy", "test_accuracy_std",
           "flow_ratio", "improvement", "ci_low", "ci_high", "diverged", "remaining")  # fmt: skip


@pytest.fixture
def prescription() -> Prescription:
    rows = [
        ("relu_activation", 0.3, 0.01, 0.91, 0.02, 0.8, 0.35, 0.30, 0.40, 0, "none"),
        (EVIL, 2.2, 0.01, 0.58, 0.05, 0.01, 0.02, -0.03, 0.07, 0, "vanishing_gradients"),
    ]
    baseline = ("baseline", 2.3, 0.0, 0.56, 0.01, 1e-3, 0.0, 0.0, 0.0, 0, "vanishing_gradients")
    return Prescription(
        baseline=pd.Series(dict(zip(COLUMNS, baseline, strict=True))),
        trials=pd.DataFrame(rows, columns=COLUMNS),
        findings=[Finding("vanishing_gradients", "critical", f"Falls by 1e3 at {EVIL}.")],
        best="relu_activation",
        changes={"relu_activation": ("replace nn.Sigmoid by nn.ReLU",)},
        settings={"optimizer": "sgd", "lr": 0.1, "steps": 30, "batch_size": 64},
        seeds=[0, 1],
    )


def _rows(html: str) -> list[list[str]]:
    return [
        [unescape(cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html)
    ]


def test_display_has_verdict_summary_figure_trials_and_findings(prescription) -> None:
    html = prescription._repr_html_()
    assert "<strong>Prescription</strong>: best remedy <code>relu_activation</code>" in html
    assert unescape(html).count(prescription.summary(table=False)) == 1
    (png,) = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert base64.b64decode(png).startswith(b"\x89PNG")
    header, *rows = _rows(html)
    assert header[:3] == ["remedy", "train loss", "test accuracy"]
    assert [r[0] for r in rows] == ["baseline", "relu_activation", EVIL]
    assert rows[1][1:5] == ["0.3 ± 0.01", "0.91 ± 0.02", "0.8", "0.35"]
    assert rows[1][5] == "0.3 to 0.4"
    assert "vanishing_gradients" in html and "Falls by 1e3 at" in html


def test_display_escapes_every_text(prescription) -> None:
    html = prescription._repr_html_()
    assert "<script" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize(
    ("changes", "verdict", "findings"),
    [
        (dict(best=None), "no remedy proven", "vanishing_gradients"),
        (dict(best=None, findings=[]), "no pathology found", "diagnosis found nothing."),
    ],
    ids=["unproven", "healthy"],
)
def test_verdict_without_a_best_remedy(prescription, changes, verdict, findings) -> None:
    html = dataclasses.replace(prescription, **changes)._repr_html_()
    assert f"<strong>Prescription</strong>: {verdict}" in html
    assert findings in html.split("Baseline findings")[1]
