"""A History's notebook display: what was recorded, escaped, and the gradient-flow figure."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from gradsight.drawing import FLOORED_LABEL
from gradsight.telemetry import History
from gradsight.telemetry.history_html import gradient_flow

EVIL = "<script>alert(1)</script>"
LAYERS = ("fc1", EVIL, "fc3")


@pytest.fixture
def history() -> History:
    h = History()
    rng = np.random.default_rng(0)
    for step in range(0, 10, 2):  # 5 logged steps
        h.log(step, "loss", 2.0 / (step + 1))
        values = rng.uniform(1e-4, 1.0, size=len(LAYERS))
        values[0] = 0.0 if step == 4 else values[0]  # no place on a log axis
        h.log_rows(step, ["grad/norm"] * len(LAYERS), list(LAYERS), values.tolist())
        h.log(step, "act/dead", 0.5, layer="fc1")
    return h


def test_summary_counts_what_was_recorded(history) -> None:
    html = history._repr_html_()
    assert "25 rows, steps 0–8 (5 logged), 3 layers" in html  # 5 steps x (1 + 3 + 1) rows
    cells = re.findall(r"<tr><td[^>]*><code[^>]*>([^<]+)</code></td>(.*?)</tr>", html)
    table = {name: re.findall(r">([^<>]+)</td>", rest) for name, rest in cells}
    assert table == {
        "loss": ["global", "5", f"{2.0 / 9:.4g}"],
        "grad/norm": ["3", "5", "—"],
        "act/dead": ["1", "5", "—"],
    }


def test_every_name_is_escaped(history) -> None:
    html = history._repr_html_()
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_figure_is_an_inline_png_of_the_gradient_norms(history) -> None:
    html = history._repr_html_()
    (source,) = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert base64.b64decode(source).startswith(b"\x89PNG\r\n\x1a\n")
    ax = gradient_flow(history).axes[0]
    assert ax.get_yscale() == "log"
    expected = history.table("grad/norm")
    lines = {line.get_label(): line for line in ax.lines}
    floor = lines.pop(FLOORED_LABEL)  # the zero of fc1, marked below the smallest value
    assert set(lines) == set(LAYERS)
    for layer in LAYERS:
        np.testing.assert_array_equal(lines[layer].get_xdata(), expected.index.to_numpy())
        values = expected[layer].to_numpy()
        np.testing.assert_array_equal(
            lines[layer].get_ydata(), np.where(values > 0, values, np.nan)
        )
    assert np.isnan(lines["fc1"].get_ydata()[2])  # the zero at step 4 is not drawn as a value
    assert list(floor.get_xdata()) == [expected.index[2]] and floor.get_markerfacecolor() == "none"


def test_without_gradient_norms_there_is_no_figure() -> None:
    h = History()
    h.log(0, "loss", 1.0)
    html = h._repr_html_()
    assert "<img" not in html and "No per-layer gradient norms recorded" in html
    assert "0 layers" in html


def test_an_empty_history_says_so() -> None:
    assert "no rows yet" in History()._repr_html_()
