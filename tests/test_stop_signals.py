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

from gradsight.telemetry import History

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
    while not (metrics.is_dir() and any(metrics.glob("part-*.parquet"))):
        assert child.poll() is None, child.stderr.read()
        assert time.monotonic() < deadline, "no metrics part within 120 s"
        time.sleep(0.1)
    child.send_signal(stop)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted" in stderr
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "interrupted"
    assert History.load(run_dir).table("loss").shape[0] > 0
    assert not list(run_dir.rglob("*.tmp"))
