"""The command line's error boundary: user errors are one line and exit 2, bugs keep their
traceback, warnings are one line each."""

from __future__ import annotations

import errno
import warnings

import pytest
import typer
from typer.testing import CliRunner

import gradsight.config  # binds the real fit before a test replaces gradsight.train.fit
import gradsight.train
from gradsight.cli import app
from gradsight.cli.errors import ErrorBoundary
from gradsight.errors import InputError, MissingPackageError

runner = CliRunner()

probe = typer.Typer(cls=ErrorBoundary, pretty_exceptions_enable=False)


@probe.command()
def raise_(kind: str) -> None:
    if kind == "input":
        raise InputError("lr must be > 0, got -1")
    if kind == "package":
        raise MissingPackageError("WandbSink needs wandb: pip install 'gradsight[wandb]'")
    if kind == "path":
        raise PermissionError(errno.EACCES, "Permission denied", "/archive/run/findings.json")
    if kind == "disk":
        raise OSError(errno.ENOSPC, "No space left on device")
    if kind == "multiline":
        raise InputError("first line\nsecond line")
    if kind == "interrupt":
        raise KeyboardInterrupt
    if kind == "warn":
        warnings.warn("batch_size 4096 is above the 1437 training examples", stacklevel=1)
        return
    raise ValueError("a bug: an internal shape mismatch")


@probe.command()
def other() -> None:
    """A second command, so that the probe app is a group."""


@pytest.mark.parametrize(
    ("kind", "line"),
    [
        ("input", "error: lr must be > 0, got -1"),
        ("package", "error: WandbSink needs wandb: pip install 'gradsight[wandb]'"),
        ("path", "error: /archive/run/findings.json: Permission denied"),
        ("disk", "error: [Errno 28] No space left on device"),
        ("multiline", "error: first line"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(kind, line):
    result = runner.invoke(probe, ["raise-", kind])
    assert result.exit_code == 2
    assert result.stderr == line + "\n"
    assert result.stdout == ""


def test_a_bug_keeps_its_exception_and_traceback():
    result = runner.invoke(probe, ["raise-", "bug"])
    assert result.exit_code == 1
    assert isinstance(result.exception, ValueError) and "a bug" in str(result.exception)
    assert "error:" not in result.stderr


def test_ctrl_c_exits_130():
    result = runner.invoke(probe, ["raise-", "interrupt"])
    assert result.exit_code == 130 and result.stderr == "interrupted\n"


def test_a_warning_is_one_line():
    result = runner.invoke(probe, ["raise-", "warn"])
    assert result.exit_code == 0
    assert result.stderr == "warning: batch_size 4096 is above the 1437 training examples\n"


def test_a_bug_inside_training_is_not_reported_as_bad_input(monkeypatch, tmp_path):
    def broken_fit(*args, **kwargs):
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr(gradsight.train, "fit", broken_fit)
    result = runner.invoke(
        app, ["train", "digits_relu_he_adam", "--run-dir", str(tmp_path / "run")]
    )
    assert result.exit_code == 1
    assert isinstance(result.exception, ValueError)
    assert "error:" not in result.stderr


def test_a_batch_larger_than_the_data_is_a_warning_naming_the_full_batch(tmp_path):
    result = runner.invoke(
        app,
        ["train", "digits_relu_he_adam", "--run-dir", str(tmp_path / "run"),
         "--set", "train.batch_size=100000", "--set", "train.steps=3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warned == [
        "warning: batch_size 100000 is above the 1437 training examples: every step takes "
        "all 1437 (full-batch gradient descent)"
    ]
