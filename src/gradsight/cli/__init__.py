"""The `gradsight` command line: every command, its console output and its error boundary.

- `commands`: the typer app (`gradsight train | run | examples | demo | report | diagnose |
  lr-find | playground | doctor`) and `main`, the console script's entry point;
- `lab`: the `gradsight lab` sub-app; `doctor`, `lr_find`, `run`, `examples`, `demo`: the
  bodies of the commands of those names;
- `console`: tables and lines printed with rich; `errors`: the boundary that turns what the
  user can fix into one line and exit 2.

Library packages never import this package; it imports them, when a command runs.
"""

from __future__ import annotations

from gradsight.cli.commands import app, main

__all__ = ["app", "main"]
