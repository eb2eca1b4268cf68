import pytest
import typer
from typer.testing import CliRunner

from gradsight.lab import EXPERIMENTS
from gradsight.lab.command import lab_app

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
    ],
    ids=["bad-name", "bad-seeds"],
)
def test_bad_input_exits_2_with_one_line(app, args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}")
    if "name" in message:
        assert all(name in lines[0] for name in EXPERIMENTS)


def test_help_has_an_example(app):
    result = runner.invoke(app, ["lab", "run", "--help"])
    assert result.exit_code == 0
    assert "Example: gradsight lab run" in result.output
