"""`gradsight run`: an unchanged training script, watched; its output, its exit status and
what was recorded checked against plain runs and independent computations."""

import contextlib
import importlib.util
import io
import os
import re
import runpy
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.nn.modules import module as module_hooks
from torch.optim import optimizer as optimizer_hooks
from typer.testing import CliRunner

from gradsight.cli import app
from gradsight.diagnosis import load_findings
from gradsight.integrations.script import as_main, run_script
from gradsight.telemetry import History, read_run

MNIST_STYLE = Path(__file__).parent / "fixtures" / "scripts" / "mnist_style.py"
SRC = Path(__file__).parents[1] / "src"
# Two epochs of 23 steps; every step's loss printed.
ARGS = ["--epochs", "2", "--log-interval", "1", "--lr", "0.5", "--seed", "3", "--no-accel"]
LOSS_LINE = re.compile(r"^Train Epoch: \d+ .*\tLoss: ([0-9.]+)$", re.MULTILINE)


def _python(args, cwd):
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "100", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _plain_run() -> str:
    """The script's stdout when run without gradsight (in this process, as `python` runs it)."""
    out = io.StringIO()
    with as_main(MNIST_STYLE, ARGS), contextlib.redirect_stdout(out):
        runpy.run_path(str(MNIST_STYLE), run_name="__main__")
    return out.getvalue()


def _reference_norms(steps: int) -> tuple[list[dict[str, float]], list[float]]:
    """The script's first `steps` training steps redone here: per-layer gradient norms
    sqrt(sum over the layer's parameters of ||g||^2) by autograd, and the losses."""
    spec = importlib.util.spec_from_file_location("mnist_style_ref", MNIST_STYLE)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    torch.manual_seed(3)  # the script's order of random draws: init, shuffle, dropout
    train_set, _ = script.digits_datasets()
    loader = torch.utils.data.DataLoader(train_set, batch_size=64, shuffle=True)
    model = script.Net()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=0.5)
    norms, losses = [], []
    model.train()
    for _, (data, target) in zip(range(steps), loader, strict=False):
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        grads = torch.autograd.grad(loss, list(model.parameters()), retain_graph=True)
        squares: dict[str, float] = {}
        for (name, _), grad in zip(model.named_parameters(), grads, strict=True):
            layer = name.rpartition(".")[0]
            squares[layer] = squares.get(layer, 0.0) + float(grad.double().pow(2).sum())
        norms.append({layer: value**0.5 for layer, value in squares.items()})
        losses.append(float(loss.detach()))
        loss.backward()
        optimizer.step()
    return norms, losses


@pytest.mark.slow
def test_run_records_an_unchanged_script_as_a_plain_run_computes_it(tmp_path, one_thread):
    plain = _plain_run()
    run_dir = tmp_path / "run"
    watched = _python(
        ["-m", "gradsight", "run", "--run-dir", str(run_dir), str(MNIST_STYLE), *ARGS], tmp_path
    )
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout == plain  # the script's own output, untouched

    history = History.load(run_dir)
    printed = [float(v) for v in LOSS_LINE.findall(plain)]
    assert len(printed) == 46
    loss = history.series("loss")
    assert list(loss.index) == list(range(46))
    assert loss.to_numpy() == pytest.approx(printed, abs=5e-7)  # printed with 6 decimals

    norms, losses = _reference_norms(steps=4)
    assert losses == pytest.approx(printed[:4], abs=5e-7)
    table = history.table("grad/norm")
    for step, expected in enumerate(norms):  # step 0 included: watched from the first step
        assert table.loc[step].to_dict() == pytest.approx(expected, rel=1e-5)

    info = read_run(run_dir)
    assert info["status"] == "finished"
    assert info["config"]["script"] == str(MNIST_STYLE)
    assert info["config"]["args"] == ARGS
    assert info["config"]["model"] == "Net"
    assert {"act/dead", "update/ratio"} <= set(history.frame()["name"])  # F.relu measured
    findings = load_findings(run_dir / "findings.json")
    assert "gradsight: watching Net with Adadelta" in watched.stderr
    assert "Net with Adadelta, 46 steps, finished" in watched.stderr
    shown = " ".join(watched.stderr.split())
    for finding in findings:
        assert f"{finding.severity.upper()} {finding.kind}:" in shown
    if not findings:
        assert "no problem found" in shown


# A small training script whose last line decides how it ends.
SCRIPT = """
import sys
import torch

print("argv", sys.argv[1:], __name__, sys.path[0])
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
extra = torch.nn.Parameter(torch.ones(()))
optimizer = torch.optim.SGD({params}, lr=0.1)
x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
for step in range(3):
    optimizer.zero_grad()
    loss_a = torch.nn.functional.cross_entropy(model(x[:8]), y[:8]) * extra / 2
    loss_b = torch.nn.functional.cross_entropy(model(x[8:]), y[8:]) * extra / 2
    loss_a.backward()
    loss_b.backward()
    print("loss", repr((loss_a + loss_b).item()))
    optimizer.step()
{ending}
"""

ENDINGS = [
    ("returns", "", 0, "finished"),
    ("exit-0", "sys.exit(0)", 0, "finished"),
    ("exit-3", "sys.exit(3)", 3, "failed"),
    ("raises", "raise ValueError('boom')", 1, "failed"),
    ("ctrl-c", "raise KeyboardInterrupt", 130, "interrupted"),
]


def _write(tmp_path, ending="", params="model.parameters()"):
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(SCRIPT).format(ending=ending, params=params))
    return path


@pytest.mark.parametrize(
    ("ending", "code", "status"), [e[1:] for e in ENDINGS], ids=[e[0] for e in ENDINGS]
)
def test_exit_status_and_run_status_follow_the_script(tmp_path, capsys, ending, code, status):
    backward, argv, path = torch.autograd.backward, list(sys.argv), list(sys.path)
    script = _write(tmp_path, ending)
    result = run_script(script, ["--flag", "1"], run_dir=tmp_path / "run")
    out = capsys.readouterr().out
    assert (result.exit_code, result.status) == (code, status)
    assert read_run(tmp_path / "run")["status"] == status
    assert f"argv ['--flag', '1'] __main__ {tmp_path}" in out
    # Two backward passes per step: the loss logged is their sum, the objective stepped.
    printed = [float(v) for v in re.findall(r"^loss (\S+)$", out, re.MULTILINE)]
    assert History.load(tmp_path / "run").series("loss").tolist() == pytest.approx(printed)
    assert (tmp_path / "run" / "findings.json").is_file()
    if code == 1:
        assert result.error.startswith("Traceback (most recent call last):\n")
        assert f'File "{script}", line' in result.error
        assert "runpy" not in result.error and result.error.endswith("ValueError: boom\n")
    # Nothing of the run is left behind.
    assert torch.autograd.backward is backward
    assert (sys.argv, sys.path) == (argv, path)
    assert not module_hooks._global_forward_pre_hooks and not module_hooks._global_forward_hooks
    assert not optimizer_hooks._global_optimizer_pre_hooks


def test_an_optimizer_no_model_holds_gets_a_watch_of_its_parameters(tmp_path, capsys):
    """model.parameters() plus a loose Parameter: no single module owns them all."""
    script = _write(tmp_path, params="[*model.parameters(), extra]")
    result = run_script(script, run_dir=tmp_path / "run")
    assert result.exit_code == 0
    (watched,) = result.runs
    assert not watched.found
    history = History.load(tmp_path / "run")
    names = set(history.frame()["name"])
    assert "grad/norm" in names and not any(n.startswith("act/") for n in names)
    table = history.table("grad/norm")
    assert sorted(table.columns) == ["0", "2", "param4"]  # named as in the Sequential
    assert list(table.index) == [0, 1, 2]
    # Step 0's norms, recomputed: the script's first step from the same seed.
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    loss = F.cross_entropy(model(x[:8]), y[:8]) / 2 + F.cross_entropy(model(x[8:]), y[8:]) / 2
    loss.backward()
    expected = torch.linalg.vector_norm(
        torch.cat([model[2].weight.grad.flatten(), model[2].bias.grad])
    )
    assert table.loc[0, "2"] == pytest.approx(float(expected), rel=1e-6)
    assert table.loc[0, "param4"] == pytest.approx(float(loss.detach()), rel=1e-6)  # d/d extra


TWO_MODELS = """
import torch
from torch import nn

class Generator(nn.Sequential):
    pass

class Critic(nn.Sequential):
    pass

torch.manual_seed(0)
gen, critic = Generator(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2)), Critic(nn.Linear(2, 1))
opt_g = torch.optim.Adam(gen.parameters(), lr=1e-3)
opt_c = torch.optim.SGD(critic.parameters(), lr=1e-2)
opt_c2 = torch.optim.SGD(critic.parameters(), lr=1e-3)
for step in range(4):
    fake = gen(torch.randn(8, 2))
    opt_c.zero_grad()
    critic(fake.detach()).mean().backward()
    opt_c.step()
    opt_g.zero_grad()
    (-critic(fake).mean()).backward()
    opt_g.step()
opt_c2.step()
"""


def test_every_model_whose_optimizer_steps_is_watched(tmp_path):
    script = tmp_path / "gan.py"
    script.write_text(textwrap.dedent(TWO_MODELS))
    result = run_script(script, run_dir=tmp_path / "run", diagnose_runs=False)
    assert [type(w.model).__name__ for w in result.runs] == ["Critic", "Generator"]
    assert [w.run.path for w in result.runs] == [tmp_path / "run", tmp_path / "run" / "Generator"]
    assert result.skipped == ["SGD of Critic (watched already)"]
    for path in (tmp_path / "run", tmp_path / "run" / "Generator"):
        assert History.load(path).series("loss").index.tolist() == [0, 1, 2, 3]


def test_cli_passes_everything_after_the_script_to_it(tmp_path):
    script = tmp_path / "show.py"
    script.write_text("import sys\nprint(sys.argv[1:])\nsys.exit(4)\n")
    result = CliRunner().invoke(
        app, ["run", "--run-dir", str(tmp_path / "run"), str(script), "--every", "5", "--help"]
    )
    assert result.exit_code == 4
    assert "['--every', '5', '--help']" in result.stdout
    assert "nothing was watched" in result.stderr
