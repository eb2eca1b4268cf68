"""Progress bars: rich's on a terminal, nothing where there is neither a terminal nor a
notebook, and in a notebook rich's columns as one HTML display updated in place."""

from __future__ import annotations

import io
import re
from html import unescape

import pytest
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from gradsight import progress
from gradsight.progress import NotebookProgress, make_progress

ipython_display = pytest.importorskip("IPython.display")  # in the dev extra (ipykernel)

COLUMNS = (TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"))


def _console(**kwargs) -> Console:
    return Console(file=io.StringIO(), width=100, **kwargs)


@pytest.mark.parametrize(
    ("console", "enabled", "kind", "disabled"),
    [
        (dict(force_terminal=True, force_jupyter=False), True, Progress, False),
        (dict(force_terminal=True, force_jupyter=False), False, Progress, True),
        (dict(force_terminal=False, force_jupyter=False), True, Progress, True),
        (dict(force_terminal=False, force_jupyter=True), True, NotebookProgress, True),
        (dict(force_terminal=False, force_jupyter=True), False, Progress, True),
    ],
    ids=["terminal", "terminal-off", "pipe", "notebook", "notebook-off"],
)
def test_where_a_bar_is_drawn(console, enabled, kind, disabled) -> None:
    bar = make_progress(*COLUMNS, console=_console(**console), enabled=enabled)
    assert type(bar) is kind
    assert bar.disable is disabled  # a NotebookProgress never starts rich's terminal display


def test_terminal_bar_is_rich_as_before() -> None:
    console = _console(force_terminal=True, force_jupyter=False)
    with make_progress(*COLUMNS, console=console, enabled=True, transient=True) as bar:
        task = bar.add_task("fit", total=4)
        bar.advance(task, 3)
        bar.refresh()
    written = console.file.getvalue()
    assert "3/4" in written and "training" in written
    assert "\x1b[" in written  # drawn with terminal control codes, erased at the end


class Handle:
    """What `display(..., display_id=True)` returns: records every update."""

    def __init__(self, bundle: dict) -> None:
        self.bundles = [bundle]

    def update(self, bundle: dict, raw: bool = False) -> None:
        assert raw
        self.bundles.append(bundle)


def test_notebook_bar_is_one_display_updated_in_place(monkeypatch) -> None:
    handles = []

    def display(bundle, raw=False, display_id=False):
        assert raw and display_id
        handles.append(Handle(bundle))
        return handles[-1]

    monkeypatch.setattr(ipython_display, "display", display)
    clock = iter(range(0, 1000, 1))  # one second per call: every update redraws
    monkeypatch.setattr(progress.time, "monotonic", lambda: float(next(clock)))
    bar = make_progress(*COLUMNS, console=_console(force_jupyter=True), enabled=True)
    with bar:
        task = bar.add_task("fit", total=5)
        for _ in range(5):
            bar.advance(task)
    assert len(handles) == 1  # one output, replaced: 5 advances and the final draw
    bundles = handles[0].bundles
    assert len(bundles) == 6
    for done, bundle in zip([1, 2, 3, 4, 5, 5], bundles, strict=True):
        text = bundle["text/plain"]
        assert re.search(rf"training .* {done}/5 steps$", text), text
        visible = unescape(re.sub(r"<[^>]+>", "", bundle["text/html"]))
        assert visible.strip() == text.strip()
        assert bundle["text/html"].startswith("<pre")


def test_notebook_bar_redraws_at_most_every_interval(monkeypatch) -> None:
    handles = []
    monkeypatch.setattr(
        ipython_display,
        "display",
        lambda b, raw, display_id: handles.append(Handle(b)) or handles[-1],
    )
    monkeypatch.setattr(progress.time, "monotonic", lambda: 100.0)  # time stands still
    bar = make_progress(*COLUMNS, console=_console(force_jupyter=True), enabled=True)
    with bar:
        task = bar.add_task("fit", total=1000)
        for _ in range(1000):
            bar.advance(task)
    # The first advance draws; the others fall within MIN_INTERVAL; the exit always draws.
    assert [b["text/plain"].split()[-2] for b in handles[0].bundles] == ["1/1000", "1000/1000"]
