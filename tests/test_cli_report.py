import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gradsight.diagnosis
from gradsight.cli import app
from gradsight.diagnosis import Finding, Remedy, load_findings, save_findings

EXAMPLES = Path(__file__).parents[1] / "examples"
runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run directory written by `gradsight train` (the failing deep sigmoid example)."""
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    result = runner.invoke(
        app,
        [
            "train",
            str(EXAMPLES / "digits_sigmoid_deep.toml"),
            "--set",
            "train.steps=40",
            "--set",
            "train.eval_every=20",
            "--run-dir",
            str(run_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    return run_dir


@pytest.fixture(scope="module")
def killed(tmp_path_factory, killed_training):
    """A run whose process died by SIGKILL: status "running", only the flushed parts."""
    run_dir = tmp_path_factory.mktemp("killed") / "run"
    killed_training(run_dir, after_step=30, activation="tanh", activations_every=5)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
    return run_dir


def finding(severity, kind="loss_plateau"):
    return Finding(
        kind,
        severity,
        f"a {severity} {kind} with numbers 1.5",
        "the mechanism",
        layers=("fc1",),
        remedies=(Remedy("momentum", "crosses flat regions"), Remedy("adaptive_optimizer")),
    )


@pytest.fixture
def fake_diagnose(monkeypatch):
    """Replace the rules by a fixed list of findings (set `.findings`)."""

    class Fake:
        def __init__(self):
            self.findings: list[Finding] = []
            self.calls = 0

        def __call__(self, history):
            self.calls += 1
            assert len(history) > 0
            return list(self.findings)

    fake = Fake()
    monkeypatch.setattr(gradsight.diagnosis, "diagnose", fake)
    return fake


def copy_run(run_dir, tmp_path):
    import shutil

    return Path(
        shutil.copytree(
            run_dir,
            tmp_path / "run",
            ignore=shutil.ignore_patterns("findings.json", "report.html", "figures"),
        )
    )


def test_report_on_a_trained_run(trained, tmp_path):
    run_dir = copy_run(trained, tmp_path)
    result = runner.invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"report: {run_dir / 'report.html'}"
    page = (run_dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 5  # no histograms: train leaves them off
    assert "digits_sigmoid_deep" in page  # the config's name is the title
    assert len(list((run_dir / "figures").glob("*.png"))) == 5
    findings = load_findings(run_dir / "findings.json")  # the real rules ran
    assert all(f.summary in page.replace("&#39;", "'") for f in findings if "<" not in f.summary)


def test_report_uses_existing_findings(trained, tmp_path, fake_diagnose):
    run_dir = copy_run(trained, tmp_path)
    save_findings([finding("critical", "vanishing_gradients")], run_dir / "findings.json")
    out = tmp_path / "elsewhere" / "page.html"
    result = runner.invoke(app, ["report", str(run_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert fake_diagnose.calls == 0
    assert "a critical vanishing_gradients with numbers 1.5" in out.read_text()
    assert not (run_dir / "report.html").exists()


def test_diagnose_prints_findings_and_writes_them(trained, tmp_path, fake_diagnose):
    run_dir = copy_run(trained, tmp_path)
    fake_diagnose.findings = [finding("critical", "vanishing_gradients"), finding("warning")]
    result = runner.invoke(app, ["diagnose", str(run_dir)])
    assert result.exit_code == 0, result.output
    for text in (
        "CRITICAL vanishing_gradients: a critical vanishing_gradients with numbers 1.5",
        "WARNING loss_plateau",
        "1. momentum: Add momentum",
        "(crosses flat regions)",
        "2. adaptive_optimizer",
        "layers: fc1",
    ):
        assert text in result.output
    assert load_findings(run_dir / "findings.json") == fake_diagnose.findings


def test_diagnose_with_no_findings(trained, tmp_path, fake_diagnose):
    result = runner.invoke(app, ["diagnose", str(copy_run(trained, tmp_path))])
    assert result.exit_code == 0
    assert "no problem found" in result.output


FAIL_ON = [
    ("none-warning", [], "warning", 0),
    ("info-warning", ["info"], "warning", 0),
    ("warning-warning", ["warning"], "warning", 1),
    ("warning-critical", ["info", "warning"], "critical", 0),
    ("critical-warning", ["critical"], "warning", 1),
    ("critical-critical", ["warning", "critical"], "critical", 1),
    ("critical-unset", ["critical"], None, 0),
]


@pytest.mark.parametrize(
    ("severities", "fail_on", "code"), [c[1:] for c in FAIL_ON], ids=[c[0] for c in FAIL_ON]
)
def test_fail_on_exit_codes(trained, tmp_path, fake_diagnose, severities, fail_on, code):
    fake_diagnose.findings = [finding(s) for s in severities]
    args = ["diagnose", str(copy_run(trained, tmp_path))]
    result = runner.invoke(app, args + (["--fail-on", fail_on] if fail_on else []))
    assert result.exit_code == code, result.output


def test_both_commands_on_a_killed_run(killed, tmp_path):
    run_dir = copy_run(killed, tmp_path)
    result = runner.invoke(app, ["diagnose", str(run_dir)])  # the real rules
    assert result.exit_code == 0, result.output
    assert (run_dir / "findings.json").is_file()
    result = runner.invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    page = (run_dir / "report.html").read_text()
    assert "The run did not finish" in page
    assert "data:image/png;base64," in page


def empty_dir(tmp_path):
    return tmp_path


def missing_dir(tmp_path):
    return tmp_path / "nope"


def no_metrics(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"status": "running", "config": {}}))
    return tmp_path


NOT_RUNS = [
    ("empty-folder", empty_dir, "is not a run directory (no run.json)"),
    ("missing-folder", missing_dir, "is not a run directory (no such folder)"),
    ("no-metrics", no_metrics, "no metrics parts"),
]


@pytest.mark.parametrize("command", ["report", "diagnose"])
@pytest.mark.parametrize(
    ("make", "message"), [c[1:] for c in NOT_RUNS], ids=[c[0] for c in NOT_RUNS]
)
def test_not_a_run_directory_exits_2(tmp_path, command, make, message):
    result = runner.invoke(app, [command, str(make(tmp_path))])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]


def test_bad_fail_on_exits_2(trained):
    result = runner.invoke(app, ["diagnose", str(trained), "--fail-on", "info"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --fail-on must be warning or critical, got 'info'"


@pytest.mark.parametrize("command", ["report", "diagnose"])
def test_help_shows_an_example(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert f"Example: gradsight {command} runs/" in result.output
