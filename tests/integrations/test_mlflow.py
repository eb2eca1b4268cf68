"""MlflowSink on a real MLflow file store under tmp_path, read back with MlflowClient."""

import math

import numpy as np
import pytest
import torch
from torch import nn

import gradsight as gs
import gradsight.integrations.mlflow
from gradsight.integrations.sinks import metric_tag

mlflow = pytest.importorskip("mlflow")
from gradsight.integrations.mlflow import MAX_BATCH, MlflowSink  # noqa: E402

STEPS = 6


@pytest.fixture
def store(tmp_path, monkeypatch):
    """The tracking URI of a file store in tmp_path (MLflow 3 wants the opt-in for it)."""
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def train(sinks):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(1)
    options = {"updates_every": 2, "activations_every": 2, "histograms": True, "sinks": sinks}
    with gs.watch(net, optimizer, **options) as watch:
        for _ in range(STEPS):
            x, y = torch.randn(16, 5, generator=g), torch.randint(0, 2, (16,), generator=g)
            loss = nn.functional.cross_entropy(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            watch.log(loss=loss)
    return watch.history


def stored(client, run_id):
    """`{tag: [(step, value), ...]}` of every metric of the run, by step."""
    keys = client.get_run(run_id).data.metrics
    return {
        key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
        for key in keys
    }


@pytest.mark.parametrize("every", [1, 2], ids=["every1", "every2"])
def test_rows_reach_the_active_run_at_their_step(store, every):
    with mlflow.start_run() as run:
        history = train([MlflowSink(every=every)])
    got = stored(mlflow.MlflowClient(), run.info.run_id)
    frame = history.frame()
    frame = frame[(frame["step"] % every == 0) & ~frame["name"].str.startswith("act/hist/")]
    want = {}
    for row in frame.itertuples():
        want.setdefault(metric_tag(row.name, row.layer), []).append((row.step, row.value))
    assert sorted(got) == sorted(want)
    assert {"gradsight/loss", "gradsight.grad.norm/0", "gradsight.act.std/1"} <= set(got)
    for key, rows in want.items():
        assert [s for s, _ in got[key]] == [s for s, _ in rows], key
        np.testing.assert_allclose([v for _, v in got[key]], [v for _, v in rows], rtol=1e-12)
    assert [s for s, _ in got["gradsight/loss"]] == list(range(0, STEPS, every))


def test_names_are_cleaned_and_nan_kept(store):
    client = mlflow.MlflowClient(store)
    run_id = client.create_run(client.create_experiment("names")).info.run_id
    sink = MlflowSink(run_id, tracking_uri=store)  # no active run needed
    sink.write(0, ["act/grad_norm", "loss"], ["hidden_tap[3]", ""], [2.5, float("nan")])
    sink.write(1, ["act/grad_norm"], ["hidden_tap[3]"], [3.5])
    sink.close()
    got = stored(client, run_id)
    assert sorted(got) == ["gradsight.act.grad_norm/hidden_tap_3_", "gradsight/loss"]
    assert got["gradsight.act.grad_norm/hidden_tap_3_"] == [(0, 2.5), (1, 3.5)]
    [(step, value)] = got["gradsight/loss"]
    assert step == 0 and math.isnan(value)


def test_a_step_larger_than_one_batch(store, monkeypatch):
    from mlflow.utils.validation import MAX_METRICS_PER_BATCH

    assert MAX_BATCH == MAX_METRICS_PER_BATCH
    calls = []
    monkeypatch.setattr(gs.integrations.mlflow, "MAX_BATCH", 10)  # 25 rows: 3 calls
    with mlflow.start_run() as run:
        sink = MlflowSink(prefix="big")
        log_batch = sink.client.log_batch
        sink.client.log_batch = lambda *a, **k: (
            calls.append(len(k["metrics"])) or log_batch(*a, **k)
        )
        sink.write(3, ["w"] * 25, [f"l{i}" for i in range(25)], [float(i) for i in range(25)])
        sink.close()
    got = stored(mlflow.MlflowClient(), run.info.run_id)
    assert calls == [10, 10, 5]
    assert len(got) == 25 and got["big.w/l24"] == [(3, 24.0)]


def test_without_a_run_it_says_so(store):
    assert mlflow.active_run() is None
    with pytest.raises(RuntimeError, match="no active MLflow run"):
        MlflowSink()


@pytest.mark.parametrize("watch", [False, True], ids=["loss-only", "watched"])
def test_fit_feeds_its_sinks(store, watch):
    task = gs.data.load("spirals", seed=0)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(task.input_shape[0], 16), nn.ReLU(), nn.Linear(16, task.output_size)
    )
    with mlflow.start_run() as run:
        result = gs.fit(model, task, lr=0.1, steps=8, batch_size=16, watch=watch,
                        sinks=[MlflowSink(every=2)])  # fmt: skip
    got = stored(mlflow.MlflowClient(), run.info.run_id)
    loss = result.history.series("loss")
    assert got["gradsight/loss"] == [(s, loss[s]) for s in range(0, 8, 2)]
    assert ("gradsight.grad.norm/0" in got) == watch
