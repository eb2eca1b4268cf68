import json

import pytest

from gradsight.telemetry import RunDir, read_run


def test_run_json_written_at_start_and_updated_at_finish(tmp_path):
    run = RunDir(tmp_path / "run", {"lr": 0.1}, seed=3)
    started = read_run(run.path)
    assert started["status"] == "running"
    assert started["config"] == {"lr": 0.1} and started["seed"] == 3
    assert set(started["versions"]) == {"python", "torch", "gradsight"}
    run.finish("finished", metrics={"loss": 0.5})
    done = read_run(run.path)
    assert done["status"] == "finished" and done["metrics"] == {"loss": 0.5}
    assert done["end_time"] is not None and done["duration_s"] >= 0


@pytest.mark.parametrize(
    ("error", "status"),
    [(KeyboardInterrupt(), "interrupted"), (RuntimeError("boom"), "failed")],
    ids=["ctrl-c", "exception"],
)
def test_running_marks_interrupted_and_failed_runs(tmp_path, error, status):
    run = RunDir(tmp_path, {})
    with pytest.raises(type(error)), run.running():
        raise error
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["status"] == status
    if status == "failed":
        assert info["error"] == "RuntimeError: boom"


def test_a_directory_holding_a_run_is_refused(tmp_path):
    RunDir(tmp_path, {})
    with pytest.raises(FileExistsError, match="already holds a run"):
        RunDir(tmp_path, {})


def test_read_run_of_a_plain_folder_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        read_run(tmp_path)
