"""What each task promises: baselines, layouts, rarity, learnability."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from torch import nn

from gradsight import data


class Constant(nn.Module):
    """Outputs the same vector for every example (or every step of a sequence)."""

    def __init__(self, value: torch.Tensor, steps: int | None = None):
        super().__init__()
        self.value = nn.Parameter(value)
        self.steps = steps

    def forward(self, x):
        shape = (len(x), self.steps) if self.steps else (len(x),)
        return self.value.expand(*shape, -1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adding_constant_one_predictor_scores_one_sixth(seed):
    task = data.load("adding", seed=seed)  # defaults: T=50, 5000 train, 1000 test
    # Sampling error of the MSE is about 0.2/sqrt(N): 0.003 on train, 0.006 on test.
    one = Constant(torch.ones(1))
    train, test = task.evaluate(one, "train"), task.evaluate(one, "test")
    assert train["mse"] == pytest.approx(2 / 12, abs=0.01)
    assert test["mse"] == pytest.approx(2 / 12, abs=0.025)
    assert "0.167" in task.description


def test_adding_layout():
    task = data.load("adding", length=9, n_train=500, n_test=10, standardize=False)
    values, marks = task.x_train[..., 0], task.x_train[..., 1]  # (N, T)
    assert ((values >= 0) & (values < 1)).all()
    assert ((marks == 0) | (marks == 1)).all() and (marks.sum(1) == 2).all()
    half = 9 // 2
    assert (marks[:, :half].sum(1) == 1).all() and (marks[:, half:].sum(1) == 1).all()
    torch.testing.assert_close(task.y_train, (values * marks).sum(1, keepdim=True))


COPY = dict(length=6, memory=4, n_symbols=5, n_train=400, n_test=100)


def test_copy_layout_and_ignore_index():
    task = data.load("copy", standardize=False, **COPY)
    memory, length, n_symbols = COPY["memory"], COPY["length"], COPY["n_symbols"]
    x, y = task.x_train, task.y_train  # (N, T, C), (N, T)
    assert (x.sum(-1) == 1).all()  # one-hot
    tokens = x.argmax(-1)  # (N, T)
    symbols = tokens[:, :memory]
    assert ((symbols >= 1) & (symbols <= n_symbols)).all()
    assert (tokens[:, memory : memory + length] == 0).all()
    assert (tokens[:, memory + length] == n_symbols + 1).all()  # the delimiter
    assert (tokens[:, memory + length + 1 :] == 0).all()
    assert (y[:, :-memory] == data.IGNORE_INDEX).all()
    assert torch.equal(y[:, -memory:], symbols)
    assert task.output_size == n_symbols + 2


class Recall(nn.Module):
    """Solves the copy task by reading the input `delay` steps back (garbage elsewhere)."""

    def __init__(self, delay: int, classes: int):
        super().__init__()
        self.delay, self.classes = delay, classes
        self.scale = nn.Parameter(torch.tensor(10.0))

    def forward(self, x):  # (N, T, C) -> (N, T, C)
        recalled = torch.roll(x.argmax(-1), self.delay, dims=1)
        return self.scale * F.one_hot(recalled, self.classes).float()


def test_copy_accuracy_scores_only_the_recall():
    task = data.load("copy", standardize=False, **COPY)
    steps, classes = task.input_shape[0], task.output_size
    perfect = Recall(delay=COPY["memory"] + COPY["length"] + 1, classes=classes)
    result = task.evaluate(perfect)
    assert result["accuracy"] == 1.0 and result["loss"] < 1e-3
    # Always "blank": right at every unscored step, wrong at every scored one.
    blank = Constant(F.one_hot(torch.tensor(0), classes).float(), steps=steps)
    assert task.evaluate(blank)["accuracy"] == 0.0
    guess = Constant(F.one_hot(torch.tensor(1), classes).float(), steps=steps)
    assert task.evaluate(guess)["accuracy"] == pytest.approx(1 / COPY["n_symbols"], abs=0.03)
    uniform = Constant(torch.zeros(classes), steps=steps)  # loss of uniform over all classes
    assert task.evaluate(uniform)["loss"] == pytest.approx(math.log(classes), rel=1e-5)
    logits = perfect(task.x_test)  # (N, T, C), scored per step by loss_fn/metric_fn
    assert task.metric_fn(logits, task.y_test).item() == 1.0
    assert task.loss_fn(logits, task.y_test).item() < 1e-3


SPARSE = dict(n_train=2000, n_test=1000, n_features=100, n_informative=50, density=0.02)


def test_sparse_features_informative_columns_are_rare_and_noise_is_dense():
    task = data.load("sparse_features", standardize=False, **SPARSE)
    nonzero = (task.x_train != 0).float().mean(0)  # (F,) fraction of examples
    informative, noise = nonzero[: SPARSE["n_informative"]], nonzero[SPARSE["n_informative"] :]
    assert informative.mean().item() == pytest.approx(SPARSE["density"], rel=0.2)
    assert informative.max() < 0.05
    assert noise.min() == 1.0
    x, y = task.x_train[:, : SPARSE["n_informative"]], task.y_train
    owner = torch.arange(SPARSE["n_informative"]) % 2
    assert (x[owner[None, :] != y[:, None]] == 0).all()  # a rare feature only fires for its class


def _logistic_accuracy(task, columns=slice(None)):
    model = LogisticRegression(max_iter=2000).fit(task.x_train[:, columns], task.y_train)
    return model.score(task.x_test[:, columns], task.y_test)


@pytest.mark.parametrize("standardize", [False, True], ids=["raw", "standardized"])
def test_sparse_features_is_learnable_only_from_the_rare_columns(standardize):
    task = data.load("sparse_features", standardize=standardize, **SPARSE)
    assert "best possible 0.820" in task.description
    assert _logistic_accuracy(task) > 0.75  # chance 0.5, best possible 0.82
    assert _logistic_accuracy(task, slice(SPARSE["n_informative"], None)) < 0.56


def test_teacher_description_gives_the_variance_and_noise_adds_to_it():
    clean = data.load("teacher", n_train=4000, n_test=10)
    var = clean.y_train.var(correction=0).item()
    assert f"{var:.4g}" in clean.description and var > 0.01
    noisy = data.load("teacher", n_train=4000, n_test=10, noise=0.5)
    assert noisy.y_train.var().item() == pytest.approx(var + 0.25, rel=0.1)
    torch.testing.assert_close(noisy.x_train, clean.x_train)  # same teacher and inputs


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "linear"])
def test_teacher_activations(activation):
    task = data.load("teacher", activation=activation, depth=3, n_train=200, n_test=10)
    assert torch.isfinite(task.y_train).all() and task.y_train.var() > 1e-3


def test_teacher_linear_depth_one_is_a_linear_map():
    task = data.load("teacher", depth=1, out_features=3, n_train=50, n_test=5, standardize=False)
    w = torch.linalg.lstsq(task.x_train, task.y_train).solution
    torch.testing.assert_close(task.x_test @ w, task.y_test, rtol=1e-4, atol=1e-4)


def test_spirals_balanced_classes_and_radius():
    task = data.load("spirals", n_train=300, n_test=30, classes=3, standardize=False)
    assert torch.bincount(task.y_train).tolist() == [100, 100, 100]
    assert task.x_train.norm(dim=1).max() <= 1.0


def test_mnist1d_seed_42_is_the_published_generator_seed():
    task = data.load("mnist1d", seed=42, num_samples=100, train_split=0.5)
    assert task.options["seed"] == 42 and len(task.x_train) == len(task.x_test) == 50
    assert torch.bincount(torch.cat([task.y_train, task.y_test])).tolist() == [10] * 10
