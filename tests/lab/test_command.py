import sys

import pytest
import typer
from typer.testing import CliRunner

from gradsight.cli import lab as lab_command
from gradsight.cli.lab import lab_app
from gradsight.executor import Executor
from gradsight.lab import EXPERIMENTS, ExperimentResult
from gradsight.lab import runner as lab_runner

runner = CliRunner()


@pytest.fixture(scope="module")
def app():
    """A root app with the lab mounted as the main CLI mounts it."""
    root = typer.Typer()

    @root.callback()
    def main() -> None:
        """Root."""

    root.add_typer(lab_app, name="lab")
    return root


def test_list_shows_every_experiment(app):
    result = runner.invoke(app, ["lab", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in EXPERIMENTS:
        assert name in result.output


def test_run_prints_the_verdicts_and_writes_the_page(app, tmp_path):
    result = runner.invoke(
        app,
        ["lab", "run", "sigmoid-product", "--quick", "--seeds", "2", "--out", str(tmp_path)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "not held" in result.output and "held" in result.output
    assert "claims held" in result.output
    assert (tmp_path / "sigmoid-product" / "index.html").is_file()
    assert f"page: {tmp_path / 'sigmoid-product' / 'index.html'}" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lab", "run", "no-such"], "unknown experiment 'no-such'; choose from all, "),
        (["lab", "run", "sigmoid-product", "--seeds", "0"], "--seeds must be >= 1, got 0"),
        (
            ["lab", "run", "saddle", "--executor", "dask"],
            "--executor must be one of local, ray, got 'dask'",
        ),
        (["lab", "run", "saddle", "--workers", "0"], "--workers must be >= 1, got 0"),
        (["lab", "run", "saddle", "--address", "auto"], "--address is for --executor ray only"),
        (
            ["lab", "run", "saddle", "--executor", "ray", "--workers", "2"],
            "--workers is for --executor local only",
        ),
    ],
    ids=["bad-name", "bad-seeds", "bad-executor", "bad-workers", "address-not-ray", "ray-workers"],
)
def test_bad_input_exits_2_with_one_line(app, args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}")
    if "name" in message:
        assert all(name in lines[0] for name in EXPERIMENTS)


def test_missing_ray_is_one_line(app, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = runner.invoke(app, ["lab", "run", "saddle", "--executor", "ray"])
    assert result.exit_code == 2
    assert (
        result.output.strip() == "error: the ray executor needs Ray: pip install 'gradsight[ray]'"
    )


def test_unreachable_ray_cluster_is_one_line(app, monkeypatch):
    def connect_ray(address):
        raise ConnectionError("Could not find any running Ray instance.\nSet RAY_ADDRESS.")

    monkeypatch.setattr(lab_command, "connect_ray", connect_ray)
    result = runner.invoke(app, ["lab", "run", "saddle", "--executor", "ray", "--address", "auto"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == [
        "error: cannot join the Ray cluster at auto: Could not find any running Ray instance."
    ]


@pytest.mark.parametrize(
    ("args", "executor"),
    [([], Executor()), (["--workers", "2"], Executor(workers=2))],
    ids=["serial", "two-workers"],
)
def test_executor_options_reach_the_config(app, tmp_path, monkeypatch, args, executor):
    seen = []

    def run_experiment(name, config):
        seen.append(config.executor)
        return ExperimentResult(page=tmp_path / name / "index.html")

    monkeypatch.setattr(lab_runner, "run_experiment", run_experiment)
    result = runner.invoke(app, ["lab", "run", "saddle", "--out", str(tmp_path), *args])
    assert result.exit_code == 0, result.output
    assert seen == [executor]


def test_help_has_an_example(app):
    result = runner.invoke(app, ["lab", "run", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Example: gradsight lab run" in result.output
    for option in ("--executor", "--workers", "--address"):
        assert option in result.output
