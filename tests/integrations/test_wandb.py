"""WandbSink on a real offline W&B run, read back from the run's `.wandb` record file."""

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import gradsight as gs
from gradsight.integrations.sinks import metric_tag

wandb = pytest.importorskip("wandb")
from wandb.proto import wandb_internal_pb2  # noqa: E402

from gradsight.integrations.wandb import WandbSink  # noqa: E402

STEPS = 6

# The .wandb file: a 7-byte header (":W&B", magic 0xBEE1, version 0), then leveldb's log
# format: 32 KiB blocks of records, each a 7-byte header (crc32c, length, type) and its data;
# a record split across blocks is FIRST, MIDDLE..., LAST. Each record is a protobuf Record.
BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path):
    data = Path(path).read_bytes()
    assert struct.unpack("<4sHB", data[:HEADER]) == (b":W&B", 0xBEE1, 0)
    position, pieces = HEADER, b""
    while position + HEADER <= len(data):
        left = BLOCK - position % BLOCK
        if left < HEADER:  # a block's zero trailer
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + HEADER])
        position += HEADER
        if kind == 0:  # zero padding to the end of the block
            position += left - HEADER
            continue
        pieces += data[position : position + length]
        position += length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pieces)
            pieces = b""
            yield record


def finish(run):
    """End the run and wait for its file: `finish()` may return before W&B's service process
    has written the run's records; shutting the service down (`teardown`) writes them."""
    run.finish()
    wandb.teardown()


def logged_rows(run):
    """The history rows of a finished offline run: one dict per `run.log`, in order."""
    [path] = Path(run.dir).parent.glob("*.wandb")
    rows = []
    for record in records(path):
        if record.WhichOneof("record_type") == "history":
            items = record.history.item
            rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in items})
    return rows


def metric_definitions(run):
    [path] = Path(run.dir).parent.glob("*.wandb")
    return {
        r.metric.glob_name or r.metric.name: r.metric
        for r in records(path)
        if r.WhichOneof("record_type") == "metric"
    }


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """A fresh offline W&B run under tmp_path; finished at the end."""
    for name in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = wandb.init(mode="offline", project="gradsight-test", dir=str(tmp_path))
    yield run
    run.finish()


def train(sinks, user_log=None):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(1)
    options = {"updates_every": 2, "activations_every": 2, "histograms": True, "sinks": sinks}
    with gs.watch(net, optimizer, **options) as watch:
        for step in range(STEPS):
            x, y = torch.randn(16, 5, generator=g), torch.randint(0, 2, (16,), generator=g)
            loss = nn.functional.cross_entropy(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            watch.log(loss=loss)
            if user_log is not None:
                user_log({"user/loss": loss.item(), "user/epoch_step": step})
    return watch.history


def expected(history, every=1):
    """`{step: {tag: value}}` of the History's scalar rows on the kept steps."""
    out = {}
    for row in history.frame().itertuples():
        if row.step % every == 0 and not row.name.startswith("act/hist/"):
            out.setdefault(row.step, {})[metric_tag(row.name, row.layer)] = row.value
    return out


def gradsight_rows(rows):
    """`{step: {tag: value}}` from the runs' rows that carry gradsight/step."""
    out = {}
    for row in rows:
        if "gradsight/step" in row:
            metrics = {k: v for k, v in row.items() if k.startswith("gradsight")}
            step = metrics.pop("gradsight/step")
            assert step not in out, "one run.log per step"
            out[step] = metrics
    return out


@pytest.mark.parametrize("every", [1, 2], ids=["every1", "every2"])
def test_rows_reach_the_run_at_their_step(offline, every):
    history = train([WandbSink(offline, every=every)])
    finish(offline)
    got, want = gradsight_rows(logged_rows(offline)), expected(history, every)
    assert sorted(got) == sorted(want) == list(range(0, STEPS, every))
    for step, metrics in want.items():
        assert sorted(got[step]) == sorted(metrics), step
        np.testing.assert_allclose(
            [got[step][k] for k in metrics], list(metrics.values()), rtol=1e-12, err_msg=str(step)
        )
    assert {"gradsight/loss", "gradsight.grad.norm/0", "gradsight.act.std/1"} <= set(got[0])
    assert not any("hist" in key for metrics in got.values() for key in metrics)


def test_the_step_axis_is_declared_for_every_gradsight_metric(offline):
    WandbSink(offline, prefix="gradsight")
    finish(offline)
    metrics = metric_definitions(offline)
    assert metrics["gradsight/step"].options.hidden
    for glob in ("gradsight/*", "gradsight.*"):
        assert metrics[glob].step_metric == "gradsight/step"


def test_the_users_own_logging_is_kept(offline):
    history = train([WandbSink()], user_log=offline.log)  # wandb.run: the active run
    finish(offline)
    rows = logged_rows(offline)
    user = [row for row in rows if "user/loss" in row]
    assert [row["user/epoch_step"] for row in user] == list(range(STEPS))
    np.testing.assert_allclose([r["user/loss"] for r in user], history.series("loss"), rtol=1e-6)
    assert sorted(gradsight_rows(rows)) == list(range(STEPS))


def test_without_a_run_it_says_so(monkeypatch):
    monkeypatch.setattr(wandb, "run", None)
    with pytest.raises(RuntimeError, match="no active W&B run"):
        WandbSink()


def test_bad_every():
    with pytest.raises(ValueError, match="every must be an int >= 1, got 0"):
        WandbSink(object(), every=0)
