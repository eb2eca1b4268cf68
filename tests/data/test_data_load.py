"""`gs.data.load` over every built-in task: shapes, determinism, standardization, errors."""

from __future__ import annotations

import inspect
import random
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

from gradsight import data


@dataclass(frozen=True)
class Case:
    name: str
    options: dict[str, Any]
    n_train: int
    n_test: int
    input_shape: tuple[int, ...]
    output_size: int
    loss: str
    metric: str
    target_shape: tuple[int, ...] = ()  # of one example

    @property
    def classification(self) -> bool:
        return self.loss == "cross_entropy"


# Small sizes: the whole table runs in a few seconds.
CASES = [
    Case("spirals", dict(n_train=90, n_test=30), 90, 30, (2,), 3, "cross_entropy", "accuracy"),
    Case("digits", {}, 1437, 360, (64,), 10, "cross_entropy", "accuracy"),
    Case("mnist1d", dict(num_samples=200), 160, 40, (40,), 10, "cross_entropy", "accuracy"),
    Case("adding", dict(length=10, n_train=64, n_test=16), 64, 16, (10, 2), 1, "mse", "mse", (1,)),
    Case(
        "copy",
        dict(length=5, memory=3, n_symbols=4, n_train=64, n_test=16),
        64,
        16,
        (12, 6),  # T = 2*3 + 5 + 1, one-hot over blank, 4 symbols, delimiter
        6,
        "cross_entropy",
        "accuracy",
        (12,),
    ),
    Case(
        "sparse_features",
        dict(n_train=200, n_test=50, n_features=30, n_informative=10, density=0.05),
        200,
        50,
        (30,),
        2,
        "cross_entropy",
        "accuracy",
    ),
    Case(
        "teacher",
        dict(in_features=5, depth=3, width=8, n_train=100, n_test=20),
        100,
        20,
        (5,),
        1,
        "mse",
        "mse",
        (1,),
    ),
]
IDS = [c.name for c in CASES]
table = pytest.mark.parametrize("case", CASES, ids=IDS)


def test_table_covers_every_task():
    assert sorted(IDS) == data.names() == sorted(data.TASKS)
    assert set(data.__all__) == {"Task", "load", "names", "TASKS", "IGNORE_INDEX"}
    assert data.IGNORE_INDEX == -100


@table
def test_shapes_dtypes_and_metadata(case):
    task = data.load(case.name, **case.options)
    assert isinstance(task, data.Task) and task.name == case.name
    assert task.input_shape == case.input_shape and task.output_size == case.output_size
    assert (task.loss, task.metric) == (case.loss, case.metric)
    assert task.x_train.shape == (case.n_train, *case.input_shape)
    assert task.x_test.shape == (case.n_test, *case.input_shape)
    assert task.y_train.shape == (case.n_train, *case.target_shape)
    assert task.y_test.shape == (case.n_test, *case.target_shape)
    assert task.x_train.dtype == task.x_test.dtype == torch.float32
    y_dtype = torch.int64 if case.classification else torch.float32
    assert task.y_train.dtype == task.y_test.dtype == y_dtype
    if case.classification:
        scored = task.y_train[task.y_train != data.IGNORE_INDEX]
        assert scored.min() >= 0 and scored.max() < task.output_size
    for t in (task.x_train, task.x_test, task.y_train.float(), task.y_test.float()):
        assert torch.isfinite(t).all()
    assert task.description and "\n" not in task.description


@table
def test_options_record_everything_used(case):
    task = data.load(case.name, seed=3, standardize=False, **case.options)
    params = set(inspect.signature(data.TASKS[case.name]).parameters) - {"seed"}
    assert set(task.options) == params | {"seed", "standardize"}
    assert task.options["seed"] == 3 and task.options["standardize"] is False
    assert case.options.items() <= task.options.items()


@table
def test_same_seed_same_data_other_seed_other_data(case):
    a = data.load(case.name, seed=5, **case.options)
    b = data.load(case.name, seed=5, **case.options)
    for split in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, split), getattr(b, split)), split
    c = data.load(case.name, seed=6, **case.options)
    assert not torch.equal(a.x_train, c.x_train)  # for digits: another split of the same images


@table
def test_standardize_uses_train_statistics(case):
    raw = data.load(case.name, standardize=False, **case.options)
    std = data.load(case.name, standardize=True, **case.options)
    dims = tuple(range(raw.x_train.dim() - 1))  # all but the feature/channel dimension
    train = raw.x_train.double()
    mean, sd = train.mean(dims), train.std(dims, correction=0)
    constant = sd == 0
    expected_train = (train - mean) / torch.where(constant, 1.0, sd)
    expected_test = (raw.x_test.double() - mean) / torch.where(constant, 1.0, sd)
    torch.testing.assert_close(std.x_train.double(), expected_train, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(std.x_test.double(), expected_test, rtol=1e-5, atol=1e-5)
    got = std.x_train.double()
    got_mean, got_sd = got.mean(dims), got.std(dims, correction=0)
    torch.testing.assert_close(got_mean, torch.zeros_like(got_mean), rtol=0, atol=1e-5)
    ones = torch.ones_like(got_sd[~constant])
    torch.testing.assert_close(got_sd[~constant], ones, rtol=0, atol=1e-4)
    assert (got_sd[constant] == 0).all() and (std.x_train[..., constant] == 0).all()
    assert torch.equal(std.y_train, raw.y_train)  # targets are never touched


def test_digits_constant_pixels_stay_zero_and_raw_range_is_kept():
    raw = data.load("digits", standardize=False)
    std = data.load("digits")
    constant = raw.x_train.std(0) == 0
    assert constant.any()  # the 8x8 digits have blank border pixels
    assert not torch.isnan(std.x_train).any() and not torch.isnan(std.x_test).any()
    assert (std.x_train[:, constant] == 0).all()
    assert raw.x_train.min() == 0 and raw.x_train.max() == 16
    assert torch.equal(raw.x_train, raw.x_train.round())


@table
def test_global_rng_state_untouched(case):
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    py_state = random.getstate()
    data.load(case.name, seed=1, **case.options)
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1])
    assert after[2:] == np_state[2:]
    assert random.getstate() == py_state


def test_mnist1d_writes_nothing_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data.load("mnist1d", num_samples=100)
    assert list(tmp_path.iterdir()) == []


ERRORS = [
    ("unknown-task", "mnist", {}, "valid names: adding, copy, digits"),
    ("unknown-option", "digits", dict(n_train=10), "unknown option 'n_train'"),
    ("unknown-option-lists-allowed", "adding", dict(lenght=10), "length, n_train, n_test"),
    ("negative-seed", "spirals", dict(seed=-1), "got -1"),
    ("standardize-not-bool", "spirals", dict(standardize="yes"), "got 'yes'"),
    ("negative-size", "spirals", dict(n_train=-5), "n_train must be an int >= 1, got -5"),
    ("float-size", "adding", dict(n_train=10.5), "got 10.5"),
    ("bool-size", "teacher", dict(n_train=True), "got True"),
    ("one-class", "spirals", dict(classes=1), "got 1"),
    ("negative-noise", "spirals", dict(noise=-0.1), "got -0.1"),
    ("nan-noise", "teacher", dict(noise=float("nan")), "got nan"),
    ("test-fraction", "digits", dict(test_fraction=1.5), "got 1.5"),
    ("num-samples-not-multiple", "mnist1d", dict(num_samples=105), "got 105"),
    ("train-split-empty", "mnist1d", dict(num_samples=10, train_split=0.05), "empty split"),
    ("short-adding", "adding", dict(length=1), "length must be an int >= 2, got 1"),
    ("no-memory", "copy", dict(memory=0), "got 0"),
    ("dense-informative", "sparse_features", dict(density=0.9), "got 0.9"),
    ("too-many-informative", "sparse_features", dict(n_informative=200), "got 200"),
    ("activation", "teacher", dict(activation="swish"), "got 'swish'"),
    ("zero-depth", "teacher", dict(depth=0), "got 0"),
]


@pytest.mark.parametrize(
    ("name", "options", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_bad_input_raises_value_error_with_the_value(name, options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        data.load(name, **options)


def test_a_registered_task_gets_the_same_treatment(monkeypatch):
    def line(seed: int, n: int, slope: float = 2.0) -> data.Task:
        x = torch.arange(float(n))[:, None] + 10  # (N, 1), far from zero on purpose
        return data.Task("line", x, slope * x, x, slope * x, "mse", "mse", (1,), 1)

    monkeypatch.setitem(data.TASKS, "line", line)
    assert "line" in data.names()
    task = data.load("line", n=4)
    assert task.options == {"seed": 0, "standardize": True, "n": 4, "slope": 2.0}
    assert task.x_train.mean().abs() < 1e-6  # standardized
    assert task.y_train[:, 0].tolist() == [20.0, 22.0, 24.0, 26.0]  # targets untouched
    with pytest.raises(ValueError, match="needs the option 'n'"):
        data.load("line")
