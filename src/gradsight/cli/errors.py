"""The command line's error boundary: what the user can fix is one line and exit 2.

Every `gradsight` command runs inside `ErrorBoundary.invoke`. There,

- a `UserError` (a value, file or argument that is not allowed; an optional package that is
  missing) prints `error: <message>`;
- an `OSError` (a path that does not exist or cannot be written, a full disk, a read-only
  filesystem, a host that does not answer) prints `error: <path>: <reason>`;
- a usage error (a missing argument, an unknown option or command, a bad option value)
  prints `error: <what click says> (see 'COMMAND --help')`, one line instead of click's box;
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


def _is_usage_error(error: BaseException) -> bool:
    """click's UsageError and its kind (exit status 2), but not `no_args_is_help`'s help page."""
    return (
        isinstance(error, typer.TyperException)
        and getattr(error, "exit_code", None) == BAD_INPUT
        and type(error).__name__ != "NoArgsIsHelpError"
    )


def usage_line(error: BaseException) -> str:
    """click's message for a usage error, with where to read the command's help."""
    ctx = getattr(error, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return error.format_message().strip().splitlines()[0] + hint


class ErrorBoundary(TyperGroup):
    """A typer group whose commands' user errors become one line on stderr and exit 2."""

    def make_context(self, info_name, args, parent=None, **extra):
        # The group's own options are parsed here, before `invoke`.
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except Exception as error:
            message = _one_line(error)
            if message is None:
                raise
            raise fail(message) from None

    def invoke(self, ctx):
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _print_warning
                return super().invoke(ctx)
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(INTERRUPTED) from None
        except Exception as error:
            message = _one_line(error)
            if message is None:
                raise
            raise fail(message) from None


def _one_line(error: BaseException) -> str | None:
    """The line for a user error or a usage error; None for a bug."""
    if _is_usage_error(error):
        return usage_line(error)
    return user_error_message(error)


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """`warnings.showwarning` for the command line: the message only, one line per warning."""
    typer.echo(f"warning: {message}", err=True)
