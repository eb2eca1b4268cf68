"""Damaged runs: bad parts are skipped with one warning; a run.json of the wrong shape is named."""

import json
import warnings

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from gradsight.cli import app
from gradsight.telemetry import History, RunDir, read_run


def _good_run(tmp_path, parts: int = 3):
    """A run directory with `parts` good parts of 2 rows each (steps 0..2*parts-1)."""
    run = RunDir(tmp_path / "run", {"name": "damaged"})
    history = History(run.metrics_dir)
    for part in range(parts):
        for step in (2 * part, 2 * part + 1):
            history.log(step, "loss", 1.0 / (step + 1))
        history.flush()
    return run


def _damage(metrics):
    good = (metrics / "part-000001.parquet").read_bytes()
    (metrics / "part-000004.parquet").write_bytes(good[: len(good) // 2])  # truncated
    (metrics / "part-000005.parquet").write_bytes(b"")  # empty
    (metrics / "part-000006.parquet").write_bytes(b"not parquet at all\n" * 20)  # garbage
    wrong = pa.table({"step": ["7"], "name": ["loss"], "layer": [""], "value": [0.5]})
    pq.write_table(wrong, metrics / "part-000007.parquet")  # step as a string
    return ["part-000004", "part-000005", "part-000006", "part-000007"]


def test_bad_parts_are_skipped_with_one_warning_naming_each(tmp_path):
    run = _good_run(tmp_path)
    bad = _damage(run.metrics_dir)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = History.load(run.path)

    assert len(caught) == 1
    message = str(caught[0].message)
    assert all(f"{name}.parquet" in message for name in bad)
    assert "part-000001" not in message
    frame = history.frame()
    assert len(history) == len(frame) == 6
    expected = pd.Series([1.0 / (s + 1) for s in range(6)])
    assert frame["step"].tolist() == list(range(6))
    assert frame["value"].tolist() == pytest.approx(expected.tolist())


def test_a_loaded_damaged_run_flushes_past_the_bad_parts(tmp_path):
    run = _good_run(tmp_path)
    _damage(run.metrics_dir)
    with pytest.warns(UserWarning):
        history = History.load(run.path)
    history.log(50, "loss", 0.01)
    assert history.flush().name == "part-000008.parquet"
    assert len(history.frame()) == 7


def test_a_run_whose_every_part_is_bad_fails_naming_them(tmp_path):
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "part-000001.parquet").write_bytes(b"")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the error names the part; no warning before it
        with pytest.raises(ValueError, match=r"no readable metrics parts .*part-000001"):
            History.load(tmp_path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ([1, 2], "JSON object"),
        ("a string", "JSON object"),
        ({"config": {}}, "status"),
        ({"status": "running"}, "config"),
        ({"status": "running", "config": [1]}, "config"),
    ],
)
def test_read_run_names_the_file_and_the_problem(tmp_path, content, problem):
    (tmp_path / "run.json").write_text(json.dumps(content))
    with pytest.raises(ValueError) as raised:
        read_run(tmp_path)
    assert str(tmp_path / "run.json") in str(raised.value)
    assert problem in str(raised.value)


def test_read_run_names_the_file_of_invalid_json(tmp_path):
    (tmp_path / "run.json").write_text('{"status": ')
    with pytest.raises(ValueError, match=r"run\.json: not valid JSON"):
        read_run(tmp_path)


@pytest.mark.parametrize("command", ["diagnose", "report"])
@pytest.mark.parametrize("content", [[1, 2], "a string", {"status": "finished"}])
def test_cli_turns_a_misshapen_run_json_into_one_line(tmp_path, command, content):
    run = _good_run(tmp_path, parts=1)
    (run.path / "run.json").write_text(json.dumps(content))
    result = CliRunner().invoke(app, [command, str(run.path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "run.json" in lines[0]
    assert not (run.path / "report.html").exists()
