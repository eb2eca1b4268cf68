"""`gradsight doctor`: a config or a user's model, the executor options, the run directory, and
one line with status 2 for bad input."""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import sys
from importlib.resources import files

import pytest
import torch
from typer.testing import CliRunner

from gradsight.cli import app
from gradsight.cli import doctor as command
from gradsight.cli.doctor import doctor_command
from gradsight.cli.errors import BAD_INPUT
from gradsight.errors import UserError
from gradsight.executor import Executor

USER = "tests.doctor.user_model"
CONFIG = str(files("gradsight") / "examples" / "digits_sigmoid_deep.toml")
# The smallest doctor run that still trains: two remedies, two seeds, 30 steps.
TINY = ["--steps", "30", "--seeds", "2", "--remedy", "relu_activation", "--remedy", "momentum"]

# (id, arguments of doctor_command, words of the one-line error)
BAD = [
    ("no-colon", {"model": USER}, "pkg.module:function"),
    ("no-module", {"model": "no_such_pkg.mod:build"}, "cannot import 'no_such_pkg.mod'"),
    ("no-name", {"model": f"{USER}:missing"}, "has no 'missing'"),
    ("not-a-model", {"model": f"{USER}:not_a_model"}, "returned str, not an nn.Module"),
    ("bad-task", {"model": f"{USER}:build", "task": "nope"}, "unknown task 'nope'"),
    ("nothing", {}, "give a CONFIG.toml or --model"),
    ("both", {"config": CONFIG, "model": f"{USER}:build"}, "not both"),
    ("task-with-config", {"config": CONFIG, "task": "digits"}, "--task goes with --model"),
    ("set-without-config", {"model": f"{USER}:build", "overrides": ["train.lr=1"]}, "--set"),
    ("no-config-file", {"config": "nope.toml"}, "config file not found"),
    ("bad-config-key", {"config": CONFIG, "overrides": ["train.nope=1"]}, "train.nope"),
    ("bad-executor", {"config": CONFIG, "executor": "slurm"}, "unknown executor 'slurm'"),
    ("no-workers", {"config": CONFIG, "workers": 0}, "workers must be an int >= 1"),
    ("address-local", {"config": CONFIG, "address": "auto"}, "address is for the ray"),
    ("run-dir-file", {"config": CONFIG, "run_dir": CONFIG}, "is a file, not a folder"),
]


@pytest.mark.parametrize(("kwargs", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_a_user_error_that_says_what_is_wrong(kwargs, words) -> None:
    with pytest.raises(UserError) as raised:
        doctor_command(**kwargs, steps=5, seeds=1, progress=False)
    assert words in str(raised.value)


def test_user_model_goes_through(capsys) -> None:
    status = doctor_command(
        model=f"{USER}:build", task="digits", lr=0.1, steps=30, seeds=1,
        remedies=["relu_activation"], progress=False,
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0 and "relu_activation" in out and "nn.Sigmoid" in out


class Captured(Exception):
    """Stops the fake doctor once it has seen its arguments."""


@pytest.fixture
def doctor_arguments(monkeypatch) -> dict:
    """The keyword arguments `doctor_command` gives gs.doctor (which does not run)."""
    seen: dict = {}

    @functools.wraps(
        importlib.import_module("gradsight.doctor.core").doctor
    )  # the command reads the doctor's signature
    def fake(model, task, **kwargs):
        seen.update(kwargs, model=model, task=task)
        raise Captured

    # gradsight.doctor.doctor is the function, so the module is named through importlib.
    monkeypatch.setattr(importlib.import_module("gradsight.doctor.core"), "doctor", fake)
    return seen


# (id, CLI arguments, what gs.doctor must be given)
FORWARDED = [
    ("config", [CONFIG],
     {"optimizer": "sgd", "lr": 0.1, "steps": 1000, "batch_size": 64, "seeds": 3,
      "remedies": "auto", "executor": Executor()}),
    ("overrides", [CONFIG, "--steps", "40", "--seeds", "2", "--lr", "0.5", "--set",
                   "train.momentum=0.5", "--optimizer", "momentum", "--batch-size", "32"],
     {"optimizer": "momentum", "lr": 0.5, "momentum": 0.5, "steps": 40, "seeds": 2,
      "batch_size": 32}),
    ("workers", [CONFIG, "--workers", "2"], {"executor": Executor("local", 2)}),
    ("ray", [CONFIG, "--executor", "ray", "--address", "auto"],
     {"executor": Executor("ray", address="auto")}),
    ("model", ["--model", f"{USER}:build", "--remedy", "he_init+momentum"],
     {"steps": 300, "batch_size": 64, "remedies": ["he_init+momentum"]}),
]  # fmt: skip


@pytest.mark.parametrize(("args", "expected"), [f[1:] for f in FORWARDED],
                         ids=[f[0] for f in FORWARDED])  # fmt: skip
def test_options_reach_the_doctor(args, expected, doctor_arguments) -> None:
    with pytest.raises(Captured):
        CliRunner().invoke(app, ["doctor", *args], catch_exceptions=False)
    assert {k: doctor_arguments[k] for k in expected} == expected
    factory = doctor_arguments["model"]
    model = factory(seed=1) if "seed" in inspect.signature(factory).parameters else factory()
    assert len(list(model.parameters())) == 20  # the config's (or user's) 10-layer MLP


def test_config_factory_pickles_and_varies_with_the_seed() -> None:
    import pickle

    import torch

    patient = command.from_config(CONFIG)
    build = pickle.loads(pickle.dumps(patient.build))
    first, again, other = build(seed=0), build(seed=0), build(seed=1)
    assert torch.equal(first.fc1.weight, again.fc1.weight)
    assert not torch.equal(first.fc1.weight, other.fc1.weight)
    assert patient.ignored == ()  # eval_every and seed are the doctor's own business
    scheduled = command.from_config(CONFIG, ['train.schedule="cosine"'])
    assert scheduled.ignored == ("schedule",)  # said in a note: the doctor trains without it


def test_config_run_writes_page_and_prescription(tmp_path) -> None:
    result = CliRunner().invoke(app, ["doctor", CONFIG, *TINY, "--run-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Baseline (optimizer=sgd, lr=0.1, steps=30" in result.output
    assert f"doctor page: {tmp_path / 'doctor.html'}" in result.output
    record = json.loads((tmp_path / "prescription.json").read_text())
    assert record["config_diff"]["relu_activation"] == [
        "  [model]",
        '- activation = "sigmoid"',
        '+ activation = "relu"',
    ]
    assert record["config_diff"]["momentum"] == ["  [train]", "+ momentum = 0.9"]
    assert {t["remedy"] for t in record["trials"]} == {"relu_activation", "momentum"}
    page = (tmp_path / "doctor.html").read_text()
    assert "digits_sigmoid_deep.toml" in page and "+ activation = &#34;relu&#34;" in page
    if record["best"]:  # the best remedy's diff is printed after the summary
        assert "As a change of" in result.output


def test_help_shows_examples_and_no_arguments_is_bad_input() -> None:
    runner = CliRunner()
    assert (
        "gradsight doctor examples/digits_sigmoid_deep.toml"
        in runner.invoke(app, ["doctor", "--help"], terminal_width=200).output
    )
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == BAD_INPUT and "give a CONFIG.toml" in result.output


def test_a_user_module_in_the_working_directory_imports_and_sys_path_is_restored(
    doctor_arguments, monkeypatch, tmp_path
):
    (tmp_path / "my_nets.py").write_text(
        "from torch import nn\n\n"
        "def build(seed=0):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    before = list(sys.path)
    with pytest.raises(Captured):
        doctor_command(model="my_nets:build", task="digits", progress=False)
    assert isinstance(doctor_arguments["model"](seed=0), torch.nn.Sequential)
    assert sys.path == before
