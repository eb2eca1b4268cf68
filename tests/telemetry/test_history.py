import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradsight.telemetry import History


def filled(history: History) -> History:
    history.log(0, "loss", 2.0)
    history.log(0, "grad/norm", 0.5, "fc1")
    history.log(1, "loss", 1.5)
    history.log_many(1, {"grad/norm": 0.25, "weight/norm": 3.0}, layer="fc1")
    return history


def test_rows_and_series():
    history = filled(History())
    assert len(history) == 5
    assert history.names() == ["loss", "grad/norm", "weight/norm"]
    assert history.layers("grad/norm") == ["fc1"]
    pd.testing.assert_series_equal(
        history.series("loss"), pd.Series([2.0, 1.5], index=[0, 1], name="loss")
    )
    assert history.last("grad/norm", "fc1") == 0.25
    assert list(history.frame().columns) == ["step", "name", "layer", "value"]


def test_unknown_metric_is_a_key_error_naming_the_present_ones():
    with pytest.raises(KeyError, match="present: loss"):
        filled(History()).series("act/dead")


def test_flush_writes_parts_that_load_back(tmp_path):
    history = History(tmp_path / "metrics")
    history.log(0, "loss", 2.0)
    first = history.flush()
    assert history.flush() is None  # nothing new
    filled(history)
    second = history.flush()
    assert [first.name, second.name] == ["part-000001.parquet", "part-000002.parquet"]
    loaded = History.load(tmp_path)
    pd.testing.assert_frame_equal(loaded.frame(), history.frame())


def test_in_memory_history_never_writes(tmp_path):
    history = filled(History())
    assert history.flush() is None


def test_load_without_parts_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no metrics parts"):
        History.load(tmp_path)


def test_flushed_rows_leave_memory_but_stay_readable(tmp_path):
    history = History(tmp_path)
    for step in range(3):
        history.log(step, "loss", float(step))
        history.flush()
    assert history._columns["step"] == []  # memory holds only unflushed rows
    history.log(3, "loss", 3.0)
    assert history.series("loss").tolist() == [0.0, 1.0, 2.0, 3.0]
    assert len(history) == 4


def test_loaded_history_can_be_appended_and_flushed(tmp_path):
    history = History(tmp_path)
    history.log(0, "loss", 1.0)
    history.flush()
    again = History.load(tmp_path)
    again.log(1, "loss", 0.5)
    assert again.flush().name == "part-000002.parquet"
    assert History.load(tmp_path).series("loss").tolist() == [1.0, 0.5]


def test_half_written_part_is_never_read(tmp_path):
    history = History(tmp_path)
    history.log(0, "loss", 1.0)
    history.flush()
    (tmp_path / "part-000002.parquet.tmp").write_bytes(b"PAR1 half")
    assert History.load(tmp_path).series("loss").tolist() == [1.0]


def test_table_is_wide_by_layer():
    table = filled(History()).table("grad/norm")
    assert list(table.columns) == ["fc1"] and table.loc[1, "fc1"] == 0.25


def test_save_writes_one_part(tmp_path):
    history = filled(History())
    history.save(tmp_path / "metrics")
    pd.testing.assert_frame_equal(History.load(tmp_path).frame(), history.frame())
    with pytest.raises(FileExistsError):
        history.save(tmp_path / "metrics")


class _Held:
    """A producer that holds (step, value) pairs back until the History drains it."""

    def __init__(self, history: History) -> None:
        self.history, self.held = history, []
        history.add_row_source(self.drain)

    def drain(self) -> None:
        held, self.held = self.held, []
        if held:
            steps = [s for s, _ in held]
            self.history.log_steps(steps, ["grad/norm"] * len(held), ["fc1"] * len(held),
                                   [v for _, v in held])  # fmt: skip


class _Sink:
    def __init__(self) -> None:
        self.writes = []

    def write(self, step, names, layers, values) -> None:
        self.writes.append((step, list(names), list(layers), list(values)))

    def close(self) -> None:
        self.writes.append("closed")


def test_held_rows_are_there_for_every_read_count_and_flush(tmp_path):
    history = History(tmp_path / "metrics")
    producer = _Held(history)
    producer.held += [(0, 0.5), (1, 0.25)]
    assert len(history) == 2 and not producer.held
    producer.held.append((2, 0.125))
    assert history.series("grad/norm", "fc1").tolist() == [0.5, 0.25, 0.125]
    producer.held.append((3, 1.0))
    history.flush()
    assert not producer.held
    assert History.load(tmp_path).series("grad/norm", "fc1").index.tolist() == [0, 1, 2, 3]


def test_rows_of_several_steps_reach_the_sinks_step_by_step_before_they_close():
    history = History()
    sink = _Sink()
    history.sinks.append(sink)
    producer = _Held(history)
    history.log_steps([3, 2, 3], ["a", "b", "c"], ["", "x", ""], [1, 2, 3])
    producer.held.append((5, 0.5))
    history.close_sinks()
    assert sink.writes == [
        (2, ["b"], ["x"], [2.0]),
        (3, ["a", "c"], ["", ""], [1.0, 3.0]),
        (5, ["grad/norm"], ["fc1"], [0.5]),
        "closed",
    ]


def test_a_closed_watch_leaves_a_history_that_holds_nothing_of_it_and_pickles():
    import pickle

    import torch

    import gradsight as gs

    model = gs.models.mlp(4, 2, depth=2, width=8, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with gs.watch(model, optimizer) as watch:
        for _ in range(3):
            loss = model(torch.randn(5, 4)).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            watch.log(loss=loss)
        live = pickle.loads(pickle.dumps(watch.history))  # mid-run: the held rows come along
        assert live.series("grad/norm_global").index.tolist() == [0, 1, 2]
    history = watch.history
    assert history._row_sources == []  # the parameters are not kept alive by the History
    copy = pickle.loads(pickle.dumps(history))
    pd.testing.assert_frame_equal(copy.frame(), history.frame())
    assert copy.series("loss").index.tolist() == [0, 1, 2]


@settings(max_examples=25)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 5), st.sampled_from(["a", "b", "c"]), st.sampled_from(["", "x", "y"])
        ),
        max_size=40,
    )
)
def test_reads_match_a_scan_of_every_row(rows):
    history = History()
    for i, (step, name, layer) in enumerate(rows):
        history.log(step, name, float(i), layer)
    frame = history.frame()
    assert history.names() == list(dict.fromkeys(name for _, name, _ in rows))
    for name in "abc":
        of_name = frame[frame["name"] == name]
        assert history.layers(name) == list(dict.fromkeys(of_name["layer"]))
        if name not in history:
            with pytest.raises(KeyError):
                history.series(name)
            continue
        for layer in ["", "x", "y"]:
            scanned = of_name[of_name["layer"] == layer]
            series = history.series(name, layer)
            assert series.index.tolist() == scanned["step"].tolist()
            assert series.tolist() == scanned["value"].tolist()
        expected = of_name.pivot_table(index="step", columns="layer", values="value", sort=False)
        pd.testing.assert_frame_equal(history.table(name), expected)
    history.log(9, "d", 1.0, "z")  # a new row: every read sees it
    assert history.names()[-1] == "d" and history.layers("d") == ["z"]
    assert history.series("d", "z").tolist() == [1.0]
    changed = history.table("d")
    changed.loc[9, "z"] = -5.0  # a caller's change stays in its copy
    assert history.table("d")["z"].tolist() == [1.0]
    history.log(10, "d", 2.0, "z")
    assert history.table("d")["z"].tolist() == [1.0, 2.0]
