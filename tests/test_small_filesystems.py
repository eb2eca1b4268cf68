"""Filesystems that fight back. A full disk: the run says it failed and why, the parts written
are kept, nothing stray is left, and the command line says so in one line. A read-only run
directory: diagnose and report read it and write their files elsewhere.

The end-to-end cases run `gradsight` on a real 128 KiB tmpfs, mounted in a private mount
namespace (`unshare -rm`: no root needed where user namespaces are allowed); where the platform
allows none, they are skipped with the reason.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gradsight.telemetry.run_dir as run_dir_module
from gradsight.telemetry import History, RunDir, read_run

GRADSIGHT = Path(sys.executable).with_name("gradsight")


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failure_on_a_full_disk_is_recorded_in_place(tmp_path, monkeypatch):
    run = RunDir(tmp_path / "run", {"name": "x"})
    monkeypatch.setattr(run_dir_module, "write_atomic", _full_disk)
    with pytest.raises(OSError), run.running():
        _full_disk()
    info = read_run(run.path)
    assert info["status"] == "failed"
    assert info["error"] == "OSError: [Errno 28] No space left on device"
    assert [p.name for p in run.path.iterdir()] == ["run.json"]


def test_when_even_that_fails_stderr_says_what_run_json_still_holds(tmp_path, monkeypatch, capsys):
    run = RunDir(tmp_path / "run", {"name": "x"})
    monkeypatch.setattr(run_dir_module, "write_atomic", _full_disk)
    real_open = open

    def no_room(file, mode="r", *args, **kwargs):
        if "+" in mode:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", no_room)
    with pytest.raises(RuntimeError, match="the training's own error"), run.running():
        raise RuntimeError("the training's own error")
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert f"could not mark {run.path} failed" in err and "'running'" in err
    assert read_run(run.path)["status"] == "running"


def test_other_write_errors_are_not_hidden(tmp_path, monkeypatch):
    run = RunDir(tmp_path / "run", {"name": "x"})

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(run_dir_module, "write_atomic", denied)
    with pytest.raises(PermissionError):
        run.update(step=1)


def _small_filesystem_script(body: str, size: str = "128k") -> subprocess.CompletedProcess:
    """Run `body` (bash) with a fresh tmpfs of `size` at $FS, in a private mount namespace."""
    script = (
        f'set -u\nFS=$(mktemp -d)\nmount -t tmpfs -o size={size} tmpfs "$FS"\n{body}\n'
        'cd /; umount "$FS"; rmdir "$FS"\n'
    )
    return subprocess.run(
        ["unshare", "-rm", "bash", "-c", script],
        capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "HOME": "/tmp"},
    )  # fmt: skip


def _skip_without_small_filesystems() -> None:
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) here: cannot mount a small filesystem")
    probe = _small_filesystem_script('test "$(stat -f -c %T "$FS")" = tmpfs')
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {probe.stderr.strip()}")


@pytest.mark.slow
def test_training_onto_a_full_disk_fails_in_one_line_and_the_run_says_so(tmp_path):
    _skip_without_small_filesystems()
    body = f"""
ERR=$({GRADSIGHT} train digits_relu_he_adam --run-dir "$FS/run" --set train.steps=100000 \\
    2>&1 >/dev/null)
echo "train-exit=$?"
echo "$ERR"
echo "run-json=$(tr -d '\\n' < "$FS/run/run.json")"
echo "parts=$(ls "$FS/run/metrics" | grep -c '^part-')"
echo "stray=$(find "$FS" -name '*.tmp' | wc -l)"
{GRADSIGHT} diagnose "$FS/run" 2>&1
echo "diagnose-exit=$?"
"""
    result = _small_filesystem_script(body)
    out = result.stdout
    assert "train-exit=2" in out, (out, result.stderr)
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0], out
    assert "keeps the steps flushed before" in errors[0] and "Traceback" not in out
    run = json.loads(out.split("run-json=", 1)[1].splitlines()[0])
    assert run["status"] == "failed" and "No space left on device" in run["error"]
    parts = int(out.split("parts=", 1)[1].splitlines()[0])
    assert parts >= 2
    assert "stray=0" in out
    assert "diagnose-exit=0" in out
    assert "did not finish (status failed)" in out and f"holds {parts * 50} steps" in out


@pytest.mark.slow
def test_a_run_on_a_read_only_filesystem_is_diagnosed_and_reported_elsewhere(tmp_path):
    _skip_without_small_filesystems()
    run = RunDir(tmp_path / "run", {"name": "archived"})
    history = History(run.metrics_dir)
    for step in range(30):
        history.log(step, "loss", 2.0 / (step + 1))
        history.log(step, "grad/norm_global", 1.0)
    history.flush()
    run.finish("finished")
    out = tmp_path / "out"
    body = f"""
cp -r {run.path} "$FS/run" && mount -o remount,ro "$FS"
touch "$FS/run/probe" 2>/dev/null && echo "still-writable"
{GRADSIGHT} diagnose "$FS/run" 2>&1
echo "diagnose-exit=$?"
{GRADSIGHT} report "$FS/run" --out {out}/report.html 2>&1
echo "report-exit=$?"
echo "run-files=$(cd "$FS/run" && find . -type f | sort | tr '\\n' ' ')"
"""
    result = _small_filesystem_script(body)
    text = result.stdout
    assert "still-writable" not in text, text
    assert "diagnose-exit=0" in text and "report-exit=0" in text, (text, result.stderr)
    assert "findings.json not saved" in text and "Traceback" not in text
    assert "run-files=./metrics/part-000001.parquet ./run.json " in text
    page = (out / "report.html").read_text()
    assert page.rstrip().endswith("</html>") and "archived" in page
    assert (out / "findings.json").is_file() and any((out / "figures").glob("*.png"))
