import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradsight import __version__
from gradsight.cli import app
from gradsight.telemetry import History, read_run

EXAMPLES = Path(__file__).parents[1] / "examples"
runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"gradsight {__version__}"


def test_train_help_shows_an_example():
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    assert "Example: gradsight train examples/" in result.output


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (["train"], "[task], [model], [train]"),
        (["lr-find"], "its [train] optimizer"),
        (["doctor"], "[train]"),
        (["lab", "run"], "gradsight[ray]"),
    ],
)
def test_help_keeps_square_brackets(command, shown):
    """rich reads [word] as markup and drops it unless escaped."""
    result = runner.invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert shown in " ".join(result.output.split())


def test_train_from_an_example_writes_a_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "train",
            str(EXAMPLES / "digits_relu_he_adam.toml"),
            "--set",
            "train.steps=60",
            "--set",
            "train.eval_every=20",
            "--run-dir",
            str(run_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    info = read_run(run_dir)
    assert info["status"] == "finished"
    assert info["config"]["train"]["steps"] == 60
    assert info["config"]["model"]["activation"] == "relu"
    assert info["metrics"]["steps"] == 60
    history = History.load(run_dir)
    assert len(history.series("loss")) == 60
    assert history.layers("grad/norm") == ["fc1", "fc2", "fc3", "fc4"]  # watched by default
    assert history.series("test/accuracy").index.tolist() == [19, 39, 59]
    assert "digits_relu_he_adam" in result.output


def write(tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


BASE = '[task]\nname = "spirals"\n[model]\nkind = "mlp"\n[train]\nsteps = 5\n'
BAD_CONFIGS = [
    ("unknown-key", BASE + "colour = 1\n", ["train.colour: unknown key; allowed:", "lr"]),
    ("wrong-type", BASE + 'lr = "fast"\n', ["train.lr: Input should be a valid number"]),
    (
        "bad-activation",
        BASE.replace('"mlp"', '"mlp"\nactivation = "relu6"'),
        ["model: unknown activation 'relu6'", "sigmoid"],
    ),
    ("bad-task", BASE.replace('"spirals"', '"cifar"'), ["task.name: 'cifar' is not a task"]),
    (
        "bad-task-option",
        BASE.replace('"spirals"', '"spirals"\nsize = 3'),
        ["task.size: unknown key; allowed:", "classes"],
    ),
    ("bad-kind", BASE.replace('"mlp"', '"transformer"'), ["model.kind: 'transformer'"]),
    ("bad-section", BASE + "[optim]\nlr = 1\n", ["optim: unknown section"]),
    ("bad-value", BASE.replace("steps = 5", "steps = 0"), ["train: steps must be >= 1, got 0"]),
    ("bad-toml", "[task\n", ["invalid TOML"]),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_config_exits_2_with_one_line(tmp_path, text, expected):
    result = runner.invoke(
        app, ["train", str(write(tmp_path, text)), "--run-dir", str(tmp_path / "run")]
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    for part in expected:
        assert part in lines[0]
    assert not (tmp_path / "run" / "run.json").exists()


def test_set_override_is_validated(tmp_path):
    result = runner.invoke(app, ["train", str(write(tmp_path, BASE)), "--set", "train.lr=-1"])
    assert result.exit_code == 2
    assert "lr must be > 0, got -1" in result.stderr


def test_missing_config_file(tmp_path):
    result = runner.invoke(app, ["train", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: config file not found: {tmp_path / 'nope.toml'}"


def test_the_installed_command_prints_no_traceback(tmp_path):
    bad = write(tmp_path, BASE + "colour = 1\n")
    done = subprocess.run(
        [sys.executable, "-m", "gradsight", "train", str(bad)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: train.colour: unknown key")
