"""Progress bars: rich's on a terminal, the same columns as HTML updated in place in a notebook.

In a Jupyter kernel without ipywidgets (measured with nbclient, rich 15, tqdm 4.70), rich's
`Progress` warns `install "ipywidgets"` and draws nothing, and `tqdm.auto` warns and falls back
to text lines with carriage returns on stderr. Jupyter's own display messages need no widget
library: `IPython.display.display(..., display_id=True)` shows an output and its handle's
`update` replaces it in place (an `update_display_data` message). `NotebookProgress` renders
rich's columns to HTML (and to plain text, for front-ends without HTML) and updates one such
display, at most every `MIN_INTERVAL` seconds; its last state stays in the cell.

```python
bar = make_progress(TextColumn("training"), BarColumn(), console=Console(stderr=True),
                    enabled=True, transient=True)
with bar:
    task = bar.add_task("fit", total=100)
    bar.advance(task)
```
"""

from __future__ import annotations

import io
import time
from typing import Any

from rich.console import Console
from rich.progress import Progress, ProgressColumn, TaskID

# Seconds between two redraws in a notebook (each redraw is one message to the front-end).
MIN_INTERVAL = 0.25
# Characters per line of the rendered bar (a notebook has no terminal width to ask).
WIDTH = 100
HTML_FORMAT = (
    '<pre style="white-space:pre;overflow-x:auto;line-height:normal;margin:0;'
    "font-family:Menlo,'DejaVu Sans Mono',consolas,'Courier New',monospace\">{code}</pre>"
)


def make_progress(
    *columns: str | ProgressColumn, console: Console, enabled: bool, transient: bool = True
) -> Progress:
    """A progress display for `columns`: drawn on a terminal, or in a notebook, or nowhere.

    Args:
        columns: rich progress columns.
        console: Where a terminal bar goes (its `is_terminal` and `is_jupyter` decide).
        enabled: False draws nothing anywhere.
        transient: Remove the terminal bar when it stops (a notebook's bar stays).

    Returns:
        rich's `Progress` on a terminal (and, disabled, where nothing is drawn), a
        `NotebookProgress` in a Jupyter kernel.
    """
    if enabled and console.is_jupyter and not console.is_terminal and _can_display():
        return NotebookProgress(*columns)
    return Progress(
        *columns,
        console=console,
        disable=not (enabled and console.is_terminal),
        transient=transient,
    )


def _can_display() -> bool:
    try:
        import IPython.display  # noqa: F401
    except ImportError:
        return False
    return True


class NotebookProgress(Progress):
    """rich's `Progress` drawn as one notebook output, updated in place.

    Tasks, columns and their arithmetic are rich's; only the drawing differs: each redraw
    renders `make_tasks_table` on a recording console and sends it as `text/html` (the
    styles inline) and `text/plain` through an IPython display handle.
    """

    def __init__(self, *columns: str | ProgressColumn) -> None:
        recorder = Console(
            file=io.StringIO(),
            width=WIDTH,
            record=True,
            force_terminal=False,
            force_jupyter=False,
            color_system="truecolor",
        )
        # disable=True: rich's own Live display (a terminal's) never starts.
        super().__init__(*columns, console=recorder, auto_refresh=False, disable=True)
        self._handle: Any = None
        self._drawn_at = -float("inf")

    def update(self, task_id: TaskID, **kwargs: Any) -> None:
        """rich's `Progress.update`, then a redraw (at most every MIN_INTERVAL seconds)."""
        super().update(task_id, **kwargs)
        self.draw()

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        """rich's `Progress.advance`, then a redraw (at most every MIN_INTERVAL seconds)."""
        super().advance(task_id, advance)
        self.draw()

    def stop(self) -> None:
        """Draw the final state (it stays in the cell's output)."""
        self.draw(force=True)

    def draw(self, force: bool = False) -> None:
        """Render the tasks and show them in the cell (replacing the previous drawing)."""
        from IPython.display import display

        with self._lock:
            now = time.monotonic()
            if not self.tasks or not (force or now - self._drawn_at >= MIN_INTERVAL):
                return
            self._drawn_at = now
            self.console.print(self.make_tasks_table(self.tasks))
            text = self.console.export_text(clear=False).rstrip("\n")
            html = self.console.export_html(inline_styles=True, code_format=HTML_FORMAT)
            bundle = {"text/plain": text, "text/html": html}
            if self._handle is None:
                self._handle = display(bundle, raw=True, display_id=True)
            else:
                self._handle.update(bundle, raw=True)


class ProgressBar:
    """One task's bar on stderr (terminal or notebook, `make_progress`), as a context manager.

    Args:
        columns: rich progress columns.
        total: The task's total (grow it with `add`).
        enabled: False draws nothing anywhere.
        description: The task's `{task.description}`.
        fields: The task's first custom fields (e.g. `loss=math.nan` for `{task.fields[loss]}`).
    """

    def __init__(
        self,
        *columns: str | ProgressColumn,
        total: float,
        enabled: bool,
        description: str = "",
        **fields: Any,
    ) -> None:
        self.progress = make_progress(*columns, console=Console(stderr=True), enabled=enabled)
        self.task_id = self.progress.add_task(description, total=total, **fields)

    def update(self, completed: float, **fields: Any) -> None:
        """Set how much is done (and custom fields)."""
        self.progress.update(self.task_id, completed=completed, **fields)

    def advance(self) -> None:
        """One more done."""
        self.progress.advance(self.task_id)

    def add(self, more: float) -> None:
        """Grow the total by `more`."""
        total = self.progress.tasks[0].total or 0
        self.progress.update(self.task_id, total=total + more)

    def __enter__(self) -> ProgressBar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)
