"""What `gs.report` returns: still a Path, and in a notebook the page itself in an iframe."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest

from gradsight.diagnosis import Finding
from gradsight.report import ReportPath, report, report_path
from gradsight.telemetry import History

EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    history = History()
    for step in range(4):
        history.log(step, "loss", 1.0 / (step + 1))
        history.log(step, "grad/norm", 0.1 * (step + 1), layer=EVIL)
    findings = [Finding("loss_plateau", "warning", f'Flat at {EVIL} & "quoted".')]
    return report(history, findings, tmp_path_factory.mktemp("r") / "report.html", title=EVIL)


def test_it_is_the_path_written(written) -> None:
    assert isinstance(written, Path) and isinstance(written, ReportPath)
    assert written == Path(written) and str(written).endswith("report.html")
    assert written.read_text().startswith("<!doctype html>")
    assert isinstance(written.parent, Path) and written.with_suffix(".json").suffix == ".json"


def test_notebook_shows_the_page_in_a_sandboxed_iframe(written) -> None:
    html = written._repr_html_()
    (srcdoc,) = re.findall(r'<iframe srcdoc="([^"]*)" sandbox=""', html)
    assert unescape(srcdoc) == written.read_text(encoding="utf-8")
    assert f"Report: <code>{written}</code>" in html
    # The page escaped EVIL once; embedding escapes it again: nothing can run or break out.
    assert "<script" not in html and "&amp;lt;script&amp;gt;" in html
    assert html.count("<iframe") == 1 and html.count("</iframe>") == 1


def test_a_page_too_large_is_named_not_embedded(written, monkeypatch) -> None:
    monkeypatch.setattr(report_path, "MAX_INLINE_BYTES", 10)
    html = written._repr_html_()
    assert "<iframe" not in html and "open the file to see it" in html


def test_what_is_no_page_has_no_html_display(written) -> None:
    assert written.parent._repr_html_() is None  # a folder
    assert (written.parent / "missing.html")._repr_html_() is None
