"""CLI output fit for logs and scripts: tables whose numbers are never cut off a terminal,
`--json` on diagnose and doctor (nothing else on stdout), and shell completion."""

from __future__ import annotations

import importlib
import io
import json
import math
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

import gradsight.diagnosis
from gradsight.cli import app
from gradsight.cli.console import print_playground
from gradsight.diagnosis import Finding, Remedy, diagnose, load_findings
from gradsight.playground import playground
from gradsight.playground.summary import summary_cells
from gradsight.telemetry import History, read_run
from gradsight.train.optimizers import build_optimizer

EXAMPLES = Path(__file__).parents[1] / "examples"
USER = "tests.doctor.user_model"
runner = CliRunner()
# A console far narrower than the tables: rich used to squeeze cells to "acc 10…".
NARROW = {"COLUMNS": "40"}
# gs.doctor is the function, so its module is named through importlib.
DOCTOR_CORE = importlib.import_module("gradsight.doctor.core")


def strict_json(text: str):
    """json.loads that rejects NaN and Infinity, which are not JSON."""

    def refuse(constant: str):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def line_with(output: str, *parts: str) -> str:
    """The first output line holding every part, in that order, or an assertion error."""
    for line in output.splitlines():
        start = 0
        for part in parts:
            found = line.find(part, start)
            if found < 0:
                break
            start = found + len(part)
        else:
            return line
    raise AssertionError(f"no line holds {parts} in:\n{output}")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`gradsight train` (the deep sigmoid example, 40 steps) on a 40-column non-terminal."""
    run_dir = tmp_path_factory.mktemp("out") / "run"
    config = str(EXAMPLES / "digits_sigmoid_deep.toml")
    args = ["train", config, "--set", "train.steps=40", "--set", "train.eval_every=20"]
    result = runner.invoke(app, [*args, "--run-dir", str(run_dir)], env=NARROW)
    assert result.exit_code == 0, result.output
    return run_dir, result.stdout


def test_train_table_keeps_every_number_whole_off_a_terminal(trained):
    run_dir, stdout = trained
    metrics = read_run(run_dir)["metrics"]
    loss = History.load(run_dir).series("loss")
    row = line_with(
        stdout,
        "digits_sigmoid_deep",
        f"{loss.iloc[0]:.3g} → {loss.iloc[-1]:.3g}",
        f"acc {metrics['test_accuracy']:.1%}",
        f"{metrics['time_s']:.3g}s",
    )
    assert "…" not in stdout and len(row) > 40  # one row, wider than the console


def test_diagnose_json_is_the_findings_and_nothing_else(trained, tmp_path):
    run_dir, _ = trained
    result = runner.invoke(app, ["diagnose", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    printed = strict_json(result.stdout)
    expected = diagnose(History.load(run_dir))  # the rules, run here on the stored metrics
    assert [f["kind"] for f in printed] == [f.kind for f in expected]
    assert printed and printed[0]["kind"] == "vanishing_gradients"
    for record, finding in zip(printed, expected, strict=True):
        assert set(record) >= {"kind", "severity", "layers", "steps", "summary", "evidence"}
        assert record["severity"] == finding.severity and record["summary"] == finding.summary
        assert record["layers"] == list(finding.layers)
        assert [r["name"] for r in record["remedies"]] == [r.name for r in finding.remedies]
        for key, value in finding.evidence.items():
            if isinstance(value, float):
                assert record["evidence"][key] == pytest.approx(value, rel=1e-12)
    assert [f.kind for f in load_findings(run_dir / "findings.json")] == [f.kind for f in expected]


def test_diagnose_json_writes_non_finite_numbers_as_null(trained, tmp_path, monkeypatch):
    finding = Finding(
        "non_finite",
        "critical",
        "the loss became NaN at step 3",
        "an overflow",
        layers=("fc[1]",),
        steps=(3,),
        evidence={"loss": math.nan, "grad_norm": math.inf, "first_step": 3},
        remedies=(Remedy("gradient_clipping"),),
    )
    monkeypatch.setattr(gradsight.diagnosis, "diagnose", lambda history: [finding])
    run_dir = Path(shutil.copytree(trained[0], tmp_path / "run"))
    result = runner.invoke(app, ["diagnose", str(run_dir), "--json", "--fail-on", "critical"])
    assert result.exit_code == 1  # --fail-on still decides the status
    (record,) = strict_json(result.stdout)
    assert record["evidence"] == {"loss": None, "grad_norm": None, "first_step": 3}
    assert record["layers"] == ["fc[1]"] and record["steps"] == [3]


@pytest.mark.parametrize(
    "args",
    [["diagnose", "no/such/run", "--json"], ["doctor", "--json"]],
    ids=["diagnose-missing-run", "doctor-no-model"],
)
def test_json_errors_are_one_line_on_stderr(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")


DOCTOR = ["doctor", "--model", f"{USER}:build", "--task", "digits", "--steps", "10", "--seeds"]
DOCTOR += ["1", "--remedy", "relu_activation"]  # no --lr: the rule's default


@pytest.fixture(scope="module")
def doctor_json(tmp_path_factory):
    """One real `gradsight doctor --json` run on a user's deep sigmoid net, and the
    Prescription it printed (kept by a spy around gs.doctor)."""
    run_dir = tmp_path_factory.mktemp("doctor")
    real, kept = DOCTOR_CORE.doctor, []

    def spy(*args, **kwargs):
        kept.append(real(*args, **kwargs))
        return kept[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DOCTOR_CORE, "doctor", spy)
        result = runner.invoke(app, [*DOCTOR, "--json", "--run-dir", str(run_dir)], env=NARROW)
    assert result.exit_code == 0, result.output
    return run_dir, result, kept[0]


def test_doctor_json_is_the_prescription_file(doctor_json):
    run_dir, result, prescription = doctor_json
    printed = strict_json(result.stdout)
    assert printed == json.loads((run_dir / "prescription.json").read_text())
    assert printed["best"] == prescription.best and printed["metric"] == "accuracy"
    (trial,) = printed["trials"]
    assert trial["remedy"] == "relu_activation"
    assert trial["improvement"] == pytest.approx(prescription.trials["improvement"].iloc[0])
    assert printed["settings"]["lr"] is None and printed["settings"]["steps"] == 10
    assert "vanishing_gradients" in {f["kind"] for f in printed["findings"]}
    assert "doctor page:" in result.stderr


def test_doctor_prints_its_trials_as_a_table_and_the_baseline_lr(doctor_json, monkeypatch):
    _, _, prescription = doctor_json
    monkeypatch.setattr(DOCTOR_CORE, "doctor", lambda *a, **k: prescription)
    result = runner.invoke(app, DOCTOR, env=NARROW)
    assert result.exit_code == 0, result.output
    # The lr the baseline trained with, read off the optimizer the rule builds.
    lr = build_optimizer("sgd", [torch.zeros(1, requires_grad=True)]).param_groups[0]["lr"]
    assert f"Baseline (optimizer=sgd, lr={lr:g} (default), steps=10" in result.stdout
    trial = prescription.trials.iloc[0]
    interval = f"{trial['improvement']:+.3g} [{trial['ci_low']:+.3g}, {trial['ci_high']:+.3g}]"
    line_with(result.stdout, "relu_activation", interval)
    assert "…" not in result.stdout


def test_playground_table_keeps_every_number_whole_off_a_terminal():
    result = playground("rosenbrock", ["sgd", "adam"], out_dir=None, steps=25)
    out = io.StringIO()
    print_playground(Console(file=out, width=40), result.summary)
    header, cells = summary_cells(result.summary)
    line_with(out.getvalue(), *header)
    for row, summary in zip(cells, result.summary, strict=True):
        line = line_with(out.getvalue(), *row)
        assert f"{summary.final_loss:.4g}" in line and f"{summary.path_length:.3g}" in line


@pytest.mark.parametrize(
    ("words", "completions"),
    [("gradsight dia", ["diagnose"]), ("gradsight doctor --js", ["--json"])],
    ids=["command", "option"],
)
def test_shell_completion(words, completions):
    env = {"_GRADSIGHT_COMPLETE": "complete_bash", "COMP_WORDS": words}
    env["COMP_CWORD"] = str(len(words.split()) - 1)
    result = runner.invoke(app, [], prog_name="gradsight", env=env)
    assert result.exit_code == 0
    assert result.stdout.split() == completions
    # As a bash user gets it: typer finds the shell among the command's parent processes
    # ("; true" keeps bash from replacing itself by the command).
    command = shlex.quote(str(Path(sys.executable).with_name("gradsight")))
    script = subprocess.run(
        ["bash", "-c", f"{command} --show-completion; true"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "_GRADSIGHT_COMPLETE=complete_bash" in script.stdout
