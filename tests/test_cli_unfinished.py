"""diagnose and report on runs that did not finish, read-only run directories and bad --out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gradsight.cli.commands
from gradsight.cli import app
from gradsight.telemetry import History

runner = CliRunner()


@pytest.fixture(scope="module")
def killed_once(tmp_path_factory, killed_training):
    """A run whose process died by SIGKILL: status "running", only the flushed parts."""
    run_dir = tmp_path_factory.mktemp("killed") / "run"
    killed_training(run_dir, after_step=30, activation="tanh", activations_every=5)
    return run_dir


@pytest.fixture
def killed(killed_once, tmp_path):
    """A copy of that run for one test."""
    return Path(shutil.copytree(killed_once, tmp_path / "run"))


def read_only(monkeypatch, *folders):
    """Make `folders` unwritable as the CLI sees them (tests run as root, where chmod is
    no obstacle; a read-only filesystem is)."""
    can_write = gradsight.cli.commands._can_write
    monkeypatch.setattr(
        gradsight.cli.commands, "_can_write", lambda f: f not in folders and can_write(f)
    )


def test_diagnose_says_a_run_did_not_finish_and_how_many_steps_it_holds(killed):
    steps = History.load(killed).frame()["step"]
    result = runner.invoke(app, ["diagnose", str(killed), "--json"])
    assert result.exit_code == 0, result.output
    note = f"did not finish (status running); it holds {steps.nunique()} steps (0 to {steps.max()})"
    assert note in result.stderr
    json.loads(result.stdout)  # stdout stays pure JSON


def test_diagnose_reads_a_run_directory_it_cannot_write(killed, monkeypatch):
    before = sorted(p.name for p in killed.iterdir())
    read_only(monkeypatch, killed)
    result = runner.invoke(app, ["diagnose", str(killed)])
    assert result.exit_code == 0, result.output
    assert "cannot be written; findings.json not saved" in result.stderr
    assert sorted(p.name for p in killed.iterdir()) == before


def test_report_of_a_read_only_run_puts_everything_beside_the_page(killed, tmp_path, monkeypatch):
    before = sorted(p.name for p in killed.rglob("*"))
    read_only(monkeypatch, killed)
    out = tmp_path / "pages" / "report.html"
    result = runner.invoke(app, ["report", str(killed), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "The run did not finish" in out.read_text()
    assert (out.parent / "findings.json").is_file() and any((out.parent / "figures").iterdir())
    assert sorted(p.name for p in killed.rglob("*")) == before


def test_report_out_a_folder_is_one_line_and_writes_nothing(killed, tmp_path):
    before = sorted(p.name for p in killed.rglob("*"))
    result = runner.invoke(app, ["report", str(killed), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert (
        result.stderr.strip() == f"error: --out {tmp_path} is a folder; give the HTML file to write"
    )
    assert sorted(p.name for p in killed.rglob("*")) == before


def test_report_out_under_a_regular_file_is_one_line(killed, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(app, ["report", str(killed), "--out", str(blocker / "r.html")])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: --out {blocker / 'r.html'}: cannot make its folder")
    assert len(result.stderr.strip().splitlines()) == 1
