import csv
import io
import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import gradsight as gs

pl = pytest.importorskip("lightning.pytorch")
from rich.console import Console  # noqa: E402

from gradsight.integrations.lightning import GradsightCallback  # noqa: E402
from gradsight.integrations.sinks import metric_tag  # noqa: E402

STEPS, ACCUMULATE, BATCH = 6, 2, 8


def data(seed=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(STEPS * ACCUMULATE * BATCH, 4, generator=g)
    return x, (x[:, 0] * x[:, 1] > 0).long()


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2))


class Module(pl.LightningModule):
    def __init__(self, call_self=True):
        super().__init__()
        self.net = net()
        self.call_self = call_self

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x) if self.call_self else self.net(x)
        return nn.functional.cross_entropy(logits, y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.2, momentum=0.9)


def fit(tmp_path, callback, call_self=True, **trainer_options):
    x, y = data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=BATCH)
    options = {
        "max_steps": STEPS,
        "accumulate_grad_batches": ACCUMULATE,
        "accelerator": "cpu",
        "devices": 1,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "logger": False,
        "default_root_dir": str(tmp_path),
        "log_every_n_steps": 1,
        **trainer_options,
    }
    module = Module(call_self)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(num_workers|does not have many workers).*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # inside Lightning 2.6
        pl.Trainer(callbacks=[callback], **options).fit(module, loader)
    return module


def reference_history():
    """The same training as plain PyTorch (Lightning scales each micro-batch's loss by 1/k)."""
    model = net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    x, y = data()
    with gs.watch(model, optimizer, updates_every=1, activations_every=2) as w:
        for step in range(STEPS):
            for micro in range(ACCUMULATE):
                rows = slice(
                    (step * ACCUMULATE + micro) * BATCH, (step * ACCUMULATE + micro + 1) * BATCH
                )
                loss = nn.functional.cross_entropy(model(x[rows]), y[rows])
                (loss / ACCUMULATE).backward()
            optimizer.step()
            optimizer.zero_grad()
            w.log(loss=loss)
    return w.history


def console():
    return Console(file=io.StringIO(), width=100)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("fit")
    callback = GradsightCallback(
        tmp_path / "run", console=console(), updates_every=1, activations_every=2
    )
    logger = pl.loggers.CSVLogger(str(tmp_path), name="csv")
    fit(tmp_path, callback, logger=logger)
    return callback, tmp_path, logger


STAT_CASES = ["grad/norm", "grad/max_abs", "update/norm", "weight/norm", "act/std", "act/grad_norm"]


@pytest.mark.parametrize("stat", STAT_CASES, ids=STAT_CASES)
def test_statistics_equal_a_plain_pytorch_loop(fitted, stat):
    callback, _, _ = fitted
    got = callback.history.table(stat)
    want = reference_history().table(stat)
    got.columns = [c.removeprefix("net.") for c in got.columns]
    assert list(got.index) == list(want.index) and len(got.index) > 0
    assert sorted(got.columns) == sorted(want.columns)
    np.testing.assert_allclose(got[want.columns].to_numpy(), want.to_numpy(), rtol=1e-5)


def test_loss_and_lr_are_recorded_once_per_step(fitted):
    callback, _, _ = fitted
    want = reference_history().series("loss")
    got = callback.history.series("loss")
    assert list(got.index) == list(range(STEPS))
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-5)
    assert callback.history.series("lr").tolist() == [0.2] * STEPS


def test_rows_reach_the_trainers_loggers_once_per_step(fitted):
    callback, _, logger = fitted
    with open(f"{logger.log_dir}/metrics.csv") as file:
        rows = [r for r in csv.DictReader(file) if r["gradsight.grad.norm/net.0"]]
    assert {"gradsight/loss", "gradsight/grad.norm_global", "gradsight/lr"} <= set(rows[0])
    assert "gradsight.act.saturated/net.1" in rows[0]
    assert [int(r["step"]) for r in rows] == list(range(STEPS))
    for name, layer in [("loss", ""), ("update/norm", "net.2"), ("grad/norm", "net.0")]:
        column = metric_tag(name, layer)
        np.testing.assert_allclose(
            [float(r[column]) for r in rows], callback.history.series(name, layer), rtol=1e-6
        )


def test_run_directory_and_findings(fitted):
    callback, tmp_path, _ = fitted
    run = tmp_path / "run"
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    loaded = gs.History.load(run)
    assert len(loaded) == len(callback.history)
    findings = json.loads((run / "findings.json").read_text())
    assert len(findings) == len(callback.findings)
    printed = callback.console.file.getvalue()
    assert "gradsight" in printed and ("no problem found" in printed or callback.findings)
    assert callback.watch is None  # closed: every hook removed


def test_training_step_that_skips_forward_is_still_watched(tmp_path):
    callback = GradsightCallback(console=console(), activations_every=1, diagnose=False)
    fit(tmp_path, callback, call_self=False)
    history = callback.history
    assert sorted(history.table("grad/norm").index) == list(range(STEPS))
    assert sorted(history.table("act/mean").index) == list(range(STEPS))
    assert "net.1" in history.layers("act/saturated")


def test_bf16_mixed_precision_reads_gradients(tmp_path):
    callback = GradsightCallback(console=console(), diagnose=False)
    fit(tmp_path, callback, precision="bf16-mixed")
    norms = callback.history.table("grad/norm")
    want = reference_history().table("grad/norm")
    norms.columns = [c.removeprefix("net.") for c in norms.columns]
    # bf16 matmuls: a few per cent of difference is expected; the scale must be the same.
    np.testing.assert_allclose(norms[want.columns].to_numpy(), want.to_numpy(), rtol=0.1)


def test_live_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    callback = GradsightCallback(
        console=console(), diagnose=False, tensorboard_dir=tmp_path / "tb", histograms=True,
        activations_every=2,
    )  # fmt: skip
    fit(tmp_path, callback)
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    assert len(events.Scalars("gradsight.grad.norm/net.0")) == STEPS
    # net.1 is a Tanh: its kind comes from the module, so its histogram uses (-1, 1).
    histogram = events.Histograms("gradsight.act.hist/net.1")[0].histogram_value
    assert histogram.bucket_limit[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("option", ["optimizer", "history"])
def test_watch_options_it_owns_are_refused(option):
    with pytest.raises(ValueError, match=f"sets '{option}' itself"):
        GradsightCallback(**{option: None})


class RecordingSink:
    """Keeps every row it is given, and whether it was closed."""

    def __init__(self):
        self.rows, self.closed = [], False

    def write(self, step, names, layers, values):
        self.rows += zip([step] * len(names), names, layers, values, strict=True)

    def close(self):
        self.closed = True


def test_loggers_get_every_nth_step_and_sinks_get_every_row(tmp_path):
    sink = RecordingSink()
    callback = GradsightCallback(console=console(), diagnose=False, sinks=[sink])
    logger = pl.loggers.CSVLogger(str(tmp_path), name="csv")
    fit(tmp_path, callback, logger=logger, log_every_n_steps=2)
    history = callback.history.frame()
    assert sorted(set(history["step"])) == list(range(STEPS))  # the History keeps every step
    with open(f"{logger.log_dir}/metrics.csv") as file:
        rows = [r for r in csv.DictReader(file) if r.get("gradsight/loss")]
    assert [int(r["step"]) for r in rows] == [0, 2, 4]  # steps divisible by log_every_n_steps
    for name, layer in [("loss", ""), ("grad/norm", "net.0"), ("lr", "")]:
        want = callback.history.series(name, layer)
        got = [float(r[metric_tag(name, layer)]) for r in rows]
        np.testing.assert_allclose(got, want[[0, 2, 4]].to_numpy(), rtol=1e-6)
    assert sink.closed
    assert sink.rows == list(history.itertuples(index=False, name=None))


def test_log_every_n_steps_zero_logs_nothing(tmp_path):
    callback = GradsightCallback(console=console(), diagnose=False)
    logger = pl.loggers.CSVLogger(str(tmp_path), name="csv")
    fit(tmp_path, callback, logger=logger, log_every_n_steps=0)
    assert len(callback.history.series("loss")) == STEPS
    metrics = tmp_path / "csv" / "version_0" / "metrics.csv"
    assert not metrics.exists() or "gradsight" not in metrics.read_text()
