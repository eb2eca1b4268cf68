"""The errors that mean "the input is wrong", not "gradsight is wrong".

gradsight's own checks raise `InputError` for a value that is not allowed (a config key, an
argument, a file's contents) and `MissingPackageError` for an optional package that is not
installed. Both derive from `UserError`, which the command line turns into one line on stderr
and exit status 2; any other exception is a bug and keeps its traceback.

`InputError` is a ValueError and `MissingPackageError` an ImportError, so library callers who
catch those keep working.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix: the message says what is wrong and what is allowed."""


class InputError(UserError, ValueError):
    """A value, file or argument given to gradsight is not allowed."""


class MissingPackageError(UserError, ImportError):
    """An optional package a feature needs is not installed; the message gives the extra."""
