"""The command line's error boundary: what the user can fix is one line and exit 2.

Every `gradsight` command runs inside `ErrorBoundary.invoke`. There,

- a `UserError` (a value, file or argument that is not allowed; an optional package that is
  missing) prints `error: <message>`;
- an `OSError` (a path that does not exist or cannot be written, a full disk, a read-only
  filesystem, a host that does not answer) prints `error: <path>: <reason>`;
- Ctrl-C (or SIGTERM, turned into it while training) prints `interrupted` and exits 130;

and anything else is a bug in gradsight: it propagates with its traceback (exit 1). Warnings
are printed as one line each, `warning: <message>`, without Python's source line.
"""

from __future__ import annotations

import warnings

import typer
from typer.core import TyperGroup

from gradsight.errors import UserError

# Exit status for input the user can fix, as click uses for usage errors.
BAD_INPUT = 2
# 128 + SIGINT, as a shell reports a process ended by Ctrl-C.
INTERRUPTED = 130


def user_error_message(error: BaseException) -> str | None:
    """The one line for an error the user can fix, or None for a bug."""
    if isinstance(error, UserError):
        return str(error)
    if isinstance(error, OSError):
        if error.filename is not None and error.strerror:
            return f"{error.filename}: {error.strerror}"
        return str(error)
    return None


def fail(message: str) -> typer.Exit:
    """Print `error: message` (first line only) to stderr; returns the exit to raise."""
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    typer.echo(f"error: {first}", err=True)
    return typer.Exit(BAD_INPUT)


class ErrorBoundary(TyperGroup):
    """A typer group whose commands' user errors become one line on stderr and exit 2."""

    def invoke(self, ctx):
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _print_warning
                return super().invoke(ctx)
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(INTERRUPTED) from None
        except (UserError, OSError) as error:
            message = user_error_message(error)
            if message is None:
                raise
            raise fail(message) from None


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """`warnings.showwarning` for the command line: the message only, one line per warning."""
    typer.echo(f"warning: {message}", err=True)
