"""StepBuffer on the row groups a real watch sends; metric names."""

import pytest
import torch
from torch import nn

import gradsight as gs
from gradsight.integrations.sinks import StepBuffer, clean_tag, metric_section, metric_tag
from gradsight.telemetry.sink import Sink

STEPS = 13


class BufferedSink:
    """The module docstring's example sink, keeping what it releases instead of printing."""

    def __init__(self, every):
        self.buffer = StepBuffer(every)
        self.released = []

    def write(self, step, names, layers, values):
        self.buffer.add(step, names, layers, values)
        self.released += self.buffer.ready()

    def close(self):
        self.released += self.buffer.pop()


def train(sink, every):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    options = {"every": every, "updates_every": every, "activations_every": 2 * every}
    with gs.watch(net, optimizer, sinks=[sink], histograms=True, **options) as watch:
        for _ in range(STEPS):
            loss = nn.functional.cross_entropy(net(torch.randn(16, 5)), torch.randint(0, 2, (16,)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            watch.log(loss=loss)
    return watch.history


def expected(history, every):
    out = {}
    for row in history.frame().itertuples():
        if row.step % every == 0 and not row.name.startswith("act/hist/"):
            out.setdefault(row.step, {})[metric_tag(row.name, row.layer)] = row.value
    return out


# (watch every, sink every): the sink's every a multiple of the watch's.
WHOLE_CASES = [(1, 1), (1, 3), (3, 3), (2, 4), (5, 5)]


@pytest.mark.parametrize(("watch", "sink"), WHOLE_CASES, ids=[f"{w}-{s}" for w, s in WHOLE_CASES])
def test_each_kept_step_is_released_once_whole_and_in_order(watch, sink):
    buffered = BufferedSink(sink)
    assert isinstance(buffered, Sink)
    history = train(buffered, watch)
    steps = [step for step, _ in buffered.released]
    assert steps == list(range(0, STEPS, sink))
    assert dict(buffered.released) == expected(history, sink)


def test_rows_later_than_the_lag_are_released_on_their_own_and_none_lost():
    buffered = BufferedSink(1)
    history = train(buffered, every=4)  # losses of steps 1-3 come with step 4's transfer
    rows = [(step, tag, value) for step, ms in buffered.released for tag, value in ms.items()]
    want = expected(history, 1)
    assert sorted(rows) == sorted((s, t, v) for s, ms in want.items() for t, v in ms.items())
    steps = [step for step, _ in buffered.released]
    assert len(steps) > len(set(steps))  # e.g. step 1's lr, then its loss


def test_buffer_rules():
    buffer = StepBuffer(every=2, lag=1)
    buffer.add(0, ["loss", "act/hist/03"], ["", "net.0"], [1.0, 0.5])
    buffer.add(1, ["loss"], [""], [2.0])  # not a kept step
    assert buffer.ready() == []  # step 0 is 1 step behind the newest: it may get more rows
    buffer.add(0, ["grad/norm"], ["net.0"], [3.0])
    buffer.add(2, ["loss"], [""], [4.0])
    assert buffer.ready() == [(0, {"gradsight/loss": 1.0, "gradsight.grad.norm/net.0": 3.0})]
    assert buffer.pop() == [(2, {"gradsight/loss": 4.0})]
    assert buffer.pop() == []


@pytest.mark.parametrize("bad", [0, -1, 1.5, True], ids=str)
def test_bad_every(bad):
    with pytest.raises(ValueError, match="every must be an int >= 1"):
        StepBuffer(bad)


NAME_CASES = [
    ("loss", "", "gradsight/loss"),
    ("test/accuracy", "", "gradsight/test.accuracy"),
    ("update/ratio", "encoder.layers.0", "gradsight.update.ratio/encoder.layers.0"),
    ("act/std", "blocks[2] attn", "gradsight.act.std/blocks_2__attn"),
]


@pytest.mark.parametrize(("name", "layer", "tag"), NAME_CASES, ids=[c[2] for c in NAME_CASES])
def test_names(name, layer, tag):
    assert metric_tag(name, layer) == tag == clean_tag(tag)
    if layer:  # the section (the part before the first "/") is the statistic's
        assert tag.split("/")[0] == metric_section(name)
    assert metric_tag(name, layer, prefix="d").removeprefix("d") == tag.removeprefix("gradsight")
