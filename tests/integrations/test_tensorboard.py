import json
import re
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import gradsight as gs
from gradsight.integrations import export
from gradsight.integrations.sinks import clean_tag, metric_tag
from gradsight.integrations.tensorboard import (
    TensorBoardSink,
    custom_scalars_layout,
    histogram_edges,
    tensorboard,
)
from gradsight.telemetry.stats import HISTOGRAM_BINS, HISTOGRAM_RANGES, SATURATING_KINDS

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def read_events(logdir):
    events = event_accumulator.EventAccumulator(
        str(logdir), size_guidance={"scalars": 0, "histograms": 0}
    )
    events.Reload()
    return events


def model():
    torch.manual_seed(0)
    # layers: 0 Linear, 1 Tanh, 2 Linear, 3 ReLU, 4 Linear
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))


def train(net, history=None, steps=4):
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(1)
    options = {"activations_every": 2, "updates_every": 2, "histograms": True}
    with gs.watch(net, optimizer, history=history, **options) as w:
        for _ in range(steps):
            x, y = torch.randn(16, 5, generator=g), torch.randint(0, 2, (16,), generator=g)
            loss = nn.functional.cross_entropy(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            w.log(loss=loss)
    return w.history


@pytest.fixture(scope="module")
def history():
    return train(model())


def scalars(events):
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def expected_scalars(history):
    frame = history.frame()
    frame = frame[~frame["name"].str.startswith("act/hist/")]
    out = {}
    for row in frame.itertuples():
        out.setdefault(metric_tag(row.name, row.layer), []).append((row.step, row.value))
    return out


def assert_same_scalars(got, want):
    assert sorted(got) == sorted(want)
    for tag, rows in want.items():
        steps, values = zip(*rows, strict=True)
        assert [s for s, _ in got[tag]] == list(steps), tag
        # TensorBoard stores float32.
        np.testing.assert_allclose([v for _, v in got[tag]], values, rtol=1e-6, err_msg=tag)


def test_export_writes_every_scalar_under_its_tag(history, tmp_path):
    logdir = export.tensorboard(history, tmp_path / "tb", model=model())
    got = scalars(read_events(logdir))
    assert {"gradsight/loss", "gradsight/grad.norm_global", "gradsight.grad.norm/0"} <= set(got)
    assert "gradsight.act.saturated/1" in got and "gradsight.act.dead/3" in got
    assert_same_scalars(got, expected_scalars(history))


HISTOGRAM_CASES = [("1", "tanh"), ("3", "relu"), ("0", "linear"), ("4", "linear")]


@pytest.mark.parametrize(
    ("layer", "kind"), HISTOGRAM_CASES, ids=[c[1] + c[0] for c in HISTOGRAM_CASES]
)
def test_export_histograms_use_the_watch_bins(history, tmp_path, layer, kind):
    events = read_events(tensorboard(history, tmp_path / "tb", model=model()))
    written = events.Histograms(f"gradsight.act.hist/{layer}")
    steps = history.table("act/hist/00").index  # the steps that logged activations
    assert [e.step for e in written] == list(steps) == [0, 2]
    edges = histogram_edges(kind)
    for event in written:
        value = event.histogram_value
        want = [history.series(f"act/hist/{i:02d}", layer)[event.step] for i in range(20)]
        np.testing.assert_allclose(value.bucket, want, rtol=1e-12)
        np.testing.assert_allclose(value.bucket_limit, edges[1:], rtol=1e-12)
        assert value.num == pytest.approx(1.0)
        assert edges[0] <= value.min < value.max <= edges[-1]


def test_unknown_sigmoid_or_tanh_layer_is_skipped_with_a_warning(history, tmp_path):
    with pytest.warns(RuntimeWarning, match="no histograms for layer '1'"):
        events = read_events(tensorboard(history, tmp_path / "tb"))
    tags = set(events.Tags()["histograms"])
    assert tags == {"gradsight.act.hist/0", "gradsight.act.hist/2", "gradsight.act.hist/3",
                    "gradsight.act.hist/4"}  # fmt: skip
    relu = events.Histograms("gradsight.act.hist/3")[0].histogram_value
    np.testing.assert_allclose(relu.bucket_limit, histogram_edges("relu")[1:])


def test_export_reads_a_run_directory(tmp_path):
    run = tmp_path / "run"
    train(model(), history=gs.History(run / "metrics"))
    got = scalars(read_events(tensorboard(run, tmp_path / "tb", model=model())))
    assert_same_scalars(got, expected_scalars(gs.History.load(run)))


def test_live_sink_writes_what_the_export_writes(tmp_path):
    net = model()
    sink = TensorBoardSink(tmp_path / "live", kinds={"1": "tanh"})
    history = gs.History()
    history.sinks.append(sink)
    train(net, history=history)
    history.close_sinks()
    live = read_events(tmp_path / "live")
    exported = read_events(tensorboard(history, tmp_path / "export", model=model()))
    assert_same_scalars(scalars(live), expected_scalars(history))
    assert set(live.Tags()["histograms"]) == set(exported.Tags()["histograms"])
    for tag in live.Tags()["histograms"]:
        a, b = live.Histograms(tag), exported.Histograms(tag)
        assert [e.histogram_value.bucket for e in a] == [e.histogram_value.bucket for e in b]


TAG_CASES = [
    ("loss", "", "gradsight/loss"),
    ("grad/norm_global", "", "gradsight/grad.norm_global"),
    ("grad/norm", "encoder.0", "gradsight.grad.norm/encoder.0"),
    ("act/grad_norm", "hidden_tap[3]", "gradsight.act.grad_norm/hidden_tap_3_"),
    ("lr", "optimizer1/group1", "gradsight.lr/optimizer1/group1"),
]


@pytest.mark.parametrize(("name", "layer", "tag"), TAG_CASES, ids=[c[2] for c in TAG_CASES])
def test_tags(tmp_path, name, layer, tag):
    history = gs.History()
    history.log(0, name, 1.5, layer)
    history.log(1, name, float("nan"), layer)
    got = scalars(read_events(tensorboard(history, tmp_path)))
    assert list(got) == [tag] == [clean_tag(tag)]
    assert got[tag][0] == (0, 1.5) and np.isnan(got[tag][1][1])


def test_histogram_ranges_exist_only_for_kinds_that_log_saturation():
    # The export infers "default range" from a layer's missing act/saturated rows.
    assert set(HISTOGRAM_RANGES) <= set(SATURATING_KINDS)
    assert len(histogram_edges("sigmoid")) == HISTOGRAM_BINS + 1


def test_bad_arguments(history, tmp_path):
    with pytest.raises(ValueError, match="model or kinds"):
        tensorboard(history, tmp_path, model=model(), kinds={})


def test_watch_writes_tensorboard_live(tmp_path):
    net = model()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = torch.randn(16, 5), torch.randint(0, 2, (16,))
    with gs.watch(net, optimizer, tensorboard_dir=tmp_path / "tb") as watch:
        for _ in range(3):
            loss = torch.nn.functional.cross_entropy(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            watch.log(loss=loss)
    assert watch.history.sinks == []  # closed with the watch
    assert_same_scalars(scalars(read_events(tmp_path / "tb")), expected_scalars(watch.history))


def served_layout(logdir):
    """The Custom Scalars layout as TensorBoard's plugin serves it (the latest one written)."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin

    with warnings.catch_warnings():  # its vendored html5lib warns on import
        warnings.simplefilter("ignore", DeprecationWarning)
        from tensorboard.plugins.custom_scalar import custom_scalars_plugin

    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    plugin = custom_scalars_plugin.CustomScalarsPlugin(
        base_plugin.TBContext(logdir=str(logdir), multiplexer=multiplexer, data_provider=provider)
    )
    layout = plugin.layout_impl(context.RequestContext(), "")
    return json.loads(layout) if layout else {}


def assert_one_chart_per_statistic(logdir, history):
    layout = served_layout(logdir)
    tags = read_events(logdir).Tags()["scalars"]
    frame = history.frame()
    frame = frame[~frame["name"].str.startswith("act/hist/")]
    layered = set(frame.loc[frame["layer"] != "", "name"])
    charts = {}
    for category in layout["category"]:
        for chart in category["chart"]:
            assert category["title"] == "gradsight." + chart["title"].split("/")[0]
            charts[chart["title"]] = chart["multiline"]["tag"]
    assert set(charts) == layered and {"grad/norm", "act/std", "update/ratio"} <= layered
    for name, [regex] in charts.items():
        want = {metric_tag(name, layer) for layer in frame.loc[frame["name"] == name, "layer"]}
        assert {tag for tag in tags if re.match(regex, tag)} == want, name
    assert sum(t.startswith("gradsight.grad.norm/") for t in tags) == 3  # one chart, 3 lines


def test_export_writes_one_multiline_chart_per_statistic(history, tmp_path):
    assert_one_chart_per_statistic(tensorboard(history, tmp_path / "tb", model=model()), history)


def test_live_layout_has_the_statistics_that_appear_after_the_first_step(tmp_path):
    history = gs.History()
    history.sinks.append(TensorBoardSink(tmp_path / "live", kinds={"1": "tanh"}))
    # act/drift needs an earlier activation step: it first appears at step 2.
    train(model(), history=history)
    history.close_sinks()
    assert history.frame().query("name == 'act/drift'")["step"].min() == 2
    assert_one_chart_per_statistic(tmp_path / "live", history)


LAYOUT_CASES = [
    ("lr", "gradsight/lr", True),
    ("lr", "gradsight.lr/group1", True),
    ("lr", "gradsight/lr_decay", False),
    ("lr", "gradsight.lr2/group1", False),
    ("grad/norm", "gradsight.grad.norm/encoder.0", True),
    ("grad/norm", "gradsight.grad.norm_global/x", False),
    ("grad/norm", "gradsight/grad.norm_global", False),
    ("act/grad_norm", "gradsight.act.grad_norm/hidden_tap_3_", True),
]


@pytest.mark.parametrize(
    ("name", "tag", "matches"), LAYOUT_CASES, ids=[f"{c[0]}-{c[1]}" for c in LAYOUT_CASES]
)
def test_layout_regex_matches_only_its_statistic(name, tag, matches):
    [[kind, [regex]]] = custom_scalars_layout([name])["gradsight." + name.split("/")[0]].values()
    assert kind == "Multiline"
    assert bool(re.match(regex, tag)) == matches
