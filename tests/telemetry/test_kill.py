import signal

from gradsight.telemetry import History, read_run


def test_a_run_killed_with_sigkill_keeps_every_flushed_part(tmp_path, killed_training):
    run_dir = tmp_path / "run"
    assert killed_training(run_dir, after_step=50) == -signal.SIGKILL
    assert read_run(run_dir)["status"] == "running"  # nobody could mark it
    steps = History.load(run_dir).series("grad/norm_global").index.tolist()
    assert len(steps) >= 40 and len(steps) % 10 == 0
    assert steps == list(range(len(steps)))
