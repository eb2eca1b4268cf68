"""Hostile configs fail with one line before any run directory exists."""

import math

import pytest
import torch
from typer.testing import CliRunner

import gradsight as gs
from gradsight.cli import app
from gradsight.config import ConfigError, load_config, prepare
from gradsight.train.fit import MAX_STEPS
from gradsight.train.optimizers import build_optimizer

runner = CliRunner()
BASE = '[task]\nname = "spirals"\n[model]\nkind = "mlp"\n[train]\nsteps = 5\n'


def train(tmp_path, text: str | bytes, *extra: str):
    """Run `gradsight train` on a config in a fresh folder; returns (result, run_dir)."""
    path = tmp_path / "cfg.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", str(path), "--run-dir", str(run_dir), *extra])
    return result, run_dir


def assert_one_line(result, run_dir, *parts: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for part in parts:
        assert part in lines[0], lines[0]
    assert not run_dir.exists()
    return lines[0]


def test_a_config_that_is_not_utf8_names_the_file(tmp_path):
    result, run_dir = train(tmp_path, BASE.encode() + b"# caf\xe9\n")
    assert_one_line(result, run_dir, "cfg.toml", "UTF-8")


def test_unknown_watch_option_names_the_key_and_the_allowed_ones(tmp_path):
    result, run_dir = train(tmp_path, BASE + "watch = { every = 2, evry = 3 }\n")
    line = assert_one_line(result, run_dir, "train.watch.evry: unknown key; allowed:")
    assert "updates_every" in line and "activations_every" in line
    # What fit sets itself is not a config's to choose.
    assert "history" not in line and "on_nonfinite" not in line


def test_watch_options_are_type_checked_and_kept(tmp_path):
    result, run_dir = train(tmp_path, BASE + 'watch = { every = "often" }\n')
    assert_one_line(result, run_dir, "train.watch.every")
    prepared = prepare({**_base(), "train": {"steps": 5, "watch": {"every": 2}}})
    assert prepared.fit_args["watch"] == {"every": 2}
    assert prepare({**_base(), "train": {"watch": False}}).fit_args["watch"] is False


def test_a_train_watch_table_is_validated_too(tmp_path):
    result, run_dir = train(tmp_path, BASE + "[train.watch]\nevery = 2\nbogus = 1\n")
    assert_one_line(result, run_dir, "train.watch.bogus: unknown key")


def _base():
    return {"name": "x", "task": {"name": "spirals"}, "model": {"kind": "mlp"}}


@pytest.mark.parametrize(
    ("schedule", "options", "key"),
    [
        ("step", 'gamma = "x"', "train.schedule_options.gamma"),
        ("cyclic", "cycles = 0", "train.schedule_options"),
        ("cosine", "gamma = 0.5", "train.schedule_options.gamma: unknown key"),
    ],
)
def test_bad_schedule_options_fail_before_the_run_directory(tmp_path, schedule, options, key):
    text = BASE + f'schedule = "{schedule}"\nschedule_options = {{ {options} }}\n'
    result, run_dir = train(tmp_path, text)
    assert_one_line(result, run_dir, key)


def test_good_schedule_options_still_train(tmp_path):
    text = BASE + 'schedule = "step"\nschedule_options = { gamma = 0.5, step_size = 2 }\n'
    result, run_dir = train(tmp_path, text)
    assert result.exit_code == 0, result.output
    lrs = gs.History.load(run_dir).series("lr").tolist()
    base = lrs[0]
    assert lrs == pytest.approx([base, base, base * 0.5, base * 0.5, base * 0.25])


@pytest.mark.parametrize("name", ["/tmp/abs", "../../x", "a/b", "..", "", "a\\b", "."])
def test_a_run_name_is_a_name_not_a_path(tmp_path, name):
    config = {**_base(), "name": name}
    with pytest.raises(ConfigError, match=r"^name: ") as caught:
        prepare(config)
    assert "--run-dir" in str(caught.value)


def test_a_plain_run_name_is_kept():
    assert prepare({**_base(), "name": "my-run_2.v1"}).name == "my-run_2.v1"


def test_a_bad_name_from_the_command_line_fails_in_one_line(tmp_path):
    result, run_dir = train(tmp_path, BASE, "--set", 'name="../../escape"')
    assert_one_line(result, run_dir, "name: ", "--run-dir")
    assert not (tmp_path.parent / "escape").exists()


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_lr_must_be_finite_in_a_config(tmp_path, value):
    result, run_dir = train(tmp_path, BASE + f"lr = {value}\n")
    assert_one_line(result, run_dir, "lr")


@pytest.mark.parametrize("lr", [math.inf, math.nan])
def test_build_optimizer_rejects_a_non_finite_lr(lr):
    with pytest.raises(ValueError, match="lr must be finite"):
        build_optimizer("sgd", [torch.nn.Parameter(torch.zeros(2))], lr)


def test_fit_rejects_an_infinite_lr_before_training():
    task = gs.data.load("spirals")
    model = gs.models.mlp(2, task.output_size, depth=1)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="lr must be finite"):
        gs.fit(model, task, lr=math.inf, steps=2)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_absurd_steps_are_rejected_with_the_bound(tmp_path):
    result, run_dir = train(tmp_path, BASE.replace("steps = 5", f"steps = {MAX_STEPS + 1}"))
    assert_one_line(result, run_dir, "steps", f"{MAX_STEPS:,}")
    task = gs.data.load("spirals")
    with pytest.raises(ValueError, match="steps must be <= "):
        gs.fit(gs.models.mlp(2, task.output_size, depth=1), task, epochs=10**9)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a CPU-only torch")
def test_cuda_on_a_cpu_only_torch_fails_in_one_line(tmp_path):
    result, run_dir = train(tmp_path, BASE + 'device = "cuda"\n')
    assert_one_line(result, run_dir, "train.device", "cuda", "not available")
    task = gs.data.load("spirals")
    with pytest.raises(ValueError, match="device 'cuda' is not available"):
        gs.fit(gs.models.mlp(2, task.output_size, depth=1), task, device="cuda", steps=1)


def test_a_device_that_is_not_a_device_fails_in_one_line(tmp_path):
    result, run_dir = train(tmp_path, BASE + 'device = "gpu0"\n')
    assert_one_line(result, run_dir, "train.device", "gpu0")


def test_load_config_reads_a_utf8_config_with_non_ascii_text(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text('description = "café"\n' + BASE, encoding="utf-8")
    config = load_config(path)
    assert config["description"] == "café"
