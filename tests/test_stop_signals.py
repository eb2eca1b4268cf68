"""`gradsight train` stopped by SIGTERM (a scheduler, `kill`) or SIGINT ends its run cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gradsight as gs
import gradsight.telemetry.history as history_module
from gradsight.stop_signals import stops_deferred
from gradsight.telemetry import History, RunDir, read_run

GRADSIGHT = str(Path(sys.executable).with_name("gradsight"))


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_stopped_training_is_marked_interrupted_and_keeps_its_parts(tmp_path, stop):
    run_dir = tmp_path / "run"
    command = [GRADSIGHT, "train", "digits_relu_he_adam", "--run-dir", str(run_dir)]
    command += ["--set", "train.steps=1000000"]
    child = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    metrics = run_dir / "metrics"
    deadline = time.monotonic() + 120
    try:
        while not (metrics.is_dir() and any(metrics.glob("part-*.parquet"))):
            assert child.poll() is None, child.stderr.read()
            assert time.monotonic() < deadline, "no metrics part within 120 s"
            time.sleep(0.1)
        child.send_signal(stop)
        _, stderr = child.communicate(timeout=60)
    finally:  # a child that ignored the stop (SIGINT is ignored under `nohup ... &`) must not
        if child.poll() is None:  # train on after the test
            child.kill()
            child.wait()
    assert child.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted" in stderr
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "interrupted"
    assert History.load(run_dir).table("loss").shape[0] > 0
    assert not list(run_dir.rglob("*.tmp"))


def test_a_stop_inside_a_deferred_block_arrives_at_its_end():
    reached = []
    with pytest.raises(KeyboardInterrupt), stops_deferred():
        signal.raise_signal(signal.SIGINT)
        reached.append("after the signal")
    assert reached == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_stop_during_a_flush_writes_the_part_once_and_leaves_no_temporary_file(
    tmp_path, monkeypatch
):
    history = History(tmp_path / "metrics")
    for step in range(3):
        history.log(step, "loss", float(step))
    real_claim = history_module._claim

    def claim_then_stop(tmp, part):
        real_claim(tmp, part)
        signal.raise_signal(signal.SIGINT)  # Ctrl-C right after the part got its name

    monkeypatch.setattr(history_module, "_claim", claim_then_stop)
    with pytest.raises(KeyboardInterrupt):
        history.flush()
    monkeypatch.undo()
    assert history.flush() is None  # nothing left to write twice
    assert History.load(tmp_path).series("loss").index.tolist() == [0, 1, 2]
    assert [p.name for p in (tmp_path / "metrics").iterdir()] == ["part-000001.parquet"]


def test_a_stop_while_fit_makes_its_run_directory_marks_the_run_interrupted(tmp_path, monkeypatch):
    real_init = RunDir.__init__

    def init_then_stop(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(RunDir, "__init__", init_then_stop)
    model = gs.models.mlp(64, 10, depth=2, width=8)
    with pytest.raises(KeyboardInterrupt):
        gs.fit(model, gs.data.load("digits"), steps=5, run_dir=tmp_path / "run")
    assert read_run(tmp_path / "run")["status"] == "interrupted"
    assert not model._forward_hooks and all(not m._forward_hooks for m in model.modules())
