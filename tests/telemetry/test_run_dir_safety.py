"""A run directory is never mixed: no training over an old run's parts, no part overwritten."""

import threading

import pytest

from gradsight.telemetry import History, RunDir


def _flush_steps(history: History, steps: range, name: str = "loss") -> None:
    for step in steps:
        history.log(step, name, float(step))
        history.flush()


def test_a_folder_with_parts_but_no_run_json_is_refused_and_left_untouched(tmp_path):
    old = tmp_path / "old"
    _flush_steps(History(old / "metrics"), range(3))
    before = {p.name: p.read_bytes() for p in (old / "metrics").iterdir()}

    with pytest.raises(FileExistsError) as raised:
        RunDir(old, {"name": "new"})

    message = str(raised.value)
    assert str(old) in message and "3 metric parts" in message and "no run.json" in message
    assert not (old / "run.json").exists()
    assert {p.name: p.read_bytes() for p in (old / "metrics").iterdir()} == before


def test_an_empty_metrics_folder_is_not_a_run(tmp_path):
    (tmp_path / "run" / "metrics").mkdir(parents=True)
    run = RunDir(tmp_path / "run", {})
    assert (run.path / "run.json").is_file()


def test_a_loaded_history_never_overwrites_the_live_writers_parts(tmp_path):
    writer = History(tmp_path / "metrics")
    _flush_steps(writer, range(0, 3))
    reader = History.load(tmp_path)
    _flush_steps(writer, range(3, 5))  # parts 4 and 5, written after the load
    reader.log(100, "extra", 1.0)
    part = reader.flush()

    assert part.name == "part-000006.parquet"
    rows = History.load(tmp_path).frame()
    assert sorted(rows.loc[rows["name"] == "loss", "step"]) == [0, 1, 2, 3, 4]
    assert rows.loc[rows["name"] == "extra", "step"].tolist() == [100]


def test_two_writers_flushing_at_once_lose_no_rows(tmp_path):
    writers = [History(tmp_path / "metrics") for _ in range(2)]
    threads = [
        threading.Thread(target=_flush_steps, args=(w, range(40), f"w{i}"))
        for i, w in enumerate(writers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    rows = History.load(tmp_path).frame()
    assert len(list((tmp_path / "metrics").glob("part-*.parquet"))) == 80
    for i in range(2):
        assert sorted(rows.loc[rows["name"] == f"w{i}", "step"]) == list(range(40))
    assert not [p for p in (tmp_path / "metrics").iterdir() if not p.name.endswith(".parquet")]


def test_a_failed_run_json_write_leaves_no_temporary_file(tmp_path):
    run = RunDir(tmp_path / "run", {"lr": 0.1})
    # A directory in run.json's place makes the rename fail after the temporary file is written.
    (run.path / "run.json").unlink()
    (run.path / "run.json").mkdir()
    (run.path / "run.json" / "keep").write_text("x")

    with pytest.raises(OSError):
        run.update(status="finished")

    assert sorted(p.name for p in run.path.iterdir()) == ["run.json"]


def test_without_hard_links_a_flush_still_never_overwrites(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise PermissionError(1, "hard links not supported", str(dst))

    monkeypatch.setattr("os.link", no_links)
    writer = History(tmp_path / "metrics")
    _flush_steps(writer, range(2))
    reader = History.load(tmp_path)
    _flush_steps(writer, range(2, 4))
    reader.log(9, "extra", 1.0)
    assert reader.flush().name == "part-000005.parquet"
    rows = History.load(tmp_path).frame()
    assert sorted(rows["step"]) == [0, 1, 2, 3, 9]
