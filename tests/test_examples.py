"""Packaged example configs by name (`gradsight train digits_sigmoid_deep`, `gradsight
examples`), from the source tree and from an installed wheel."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradsight.cli import app
from gradsight.cli.doctor import from_config
from gradsight.config import ConfigError, load_config
from gradsight.telemetry import History, read_run

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).parents[1]
SHIPPED = ROOT / "src" / "gradsight" / "examples"
runner = CliRunner()


def _descriptions() -> dict[str, str]:
    return {
        path.stem: tomllib.loads(path.read_text())["description"]
        for path in sorted(SHIPPED.glob("*.toml"))
    }


def test_examples_lists_every_packaged_config_with_its_description():
    result = runner.invoke(app, ["examples"])
    assert result.exit_code == 0, result.output
    for name, description in _descriptions().items():  # one table row each, whole
        assert re.search(rf"│ {name} +│ {re.escape(description)} +│", result.stdout), name
    assert "gradsight train NAME" in result.stdout


def test_examples_show_prints_the_config_as_shipped():
    result = runner.invoke(app, ["examples", "--show", "digits_relu_he_adam"])
    assert result.exit_code == 0
    assert result.stdout == (SHIPPED / "digits_relu_he_adam.toml").read_text()
    missing = runner.invoke(app, ["examples", "--show", "nope"])
    assert missing.exit_code == 2
    assert "no packaged example 'nope'" in missing.stderr


@pytest.mark.parametrize("name", ["digits_sigmoid_deep", "digits_sigmoid_deep.toml"])
def test_a_bare_name_loads_the_packaged_config(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)  # no such file here
    expected = tomllib.loads((SHIPPED / "digits_sigmoid_deep.toml").read_text())
    assert load_config(name) == {**expected, "name": "digits_sigmoid_deep"}
    assert load_config(name, ["train.lr=0.5"])["train"]["lr"] == 0.5


def test_a_file_of_that_name_comes_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "digits_sigmoid_deep.toml").write_text('description = "mine"\n')
    assert load_config("digits_sigmoid_deep.toml")["description"] == "mine"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("nope", "config file not found: nope (nor a packaged example: adding_lstm, "),
        ("configs/digits_sigmoid_deep.toml", "config file not found: configs/digits_sigmoid_deep"),
    ],
    ids=["unknown-name", "a-folder-is-a-path"],
)
def test_what_is_neither_file_nor_example_is_one_line(tmp_path, monkeypatch, given, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(")):
        load_config(given)


def test_train_and_doctor_take_an_example_by_name(tmp_path, monkeypatch, one_thread):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        app,
        ["train", "digits_sigmoid_deep", "--set", "train.steps=20", "--run-dir", "run"],
    )
    assert result.exit_code == 0, result.output
    assert read_run(tmp_path / "run")["config"]["name"] == "digits_sigmoid_deep"
    assert History.load(tmp_path / "run").series("loss").index.max() == 19
    patient = from_config("digits_relu_he_adam", ["train.steps=10"])
    assert patient.config["name"] == "digits_relu_he_adam"


def _pip(*args, cwd):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            *args,
            "--quiet",
            "--no-input",
            "--disable-pip-version-check",
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_the_examples_ship_in_the_wheel_and_run_by_name(tmp_path):
    wheels, target, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    built = _pip(
        "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT), cwd=work
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("gradsight-*.whl")
    installed = _pip("install", "--no-deps", "--target", str(target), str(wheel), cwd=work)
    assert installed.returncode == 0, installed.stderr
    # The wheel's copy first, deps from the venv; one torch thread (a shared 2-core machine).
    env = {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}

    def gradsight(*args):
        return subprocess.run(
            [sys.executable, *args], cwd=work, env=env, capture_output=True, text=True, timeout=300
        )

    where = gradsight("-c", "import gradsight; print(gradsight.__file__)")
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(target)
    listed = gradsight("-m", "gradsight", "examples")
    assert listed.returncode == 0, listed.stderr
    for name, description in _descriptions().items():
        assert re.search(rf"│ {name} +│ {re.escape(description)} +│", listed.stdout), name
    trained = gradsight(
        "-m", "gradsight", "train", "digits_sigmoid_deep", "--set", "train.steps=20",
        "--run-dir", str(work / "run"),
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    info = read_run(work / "run")
    assert info["status"] == "finished"
    assert info["config"]["name"] == "digits_sigmoid_deep"
