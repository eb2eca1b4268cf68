"""The LR range test: schedule, smoothing, early stop, suggestions, restoration, and use."""

import copy
import math

import pytest
import torch
from matplotlib.figure import Figure

import gradsight as gs
from gradsight.train import lr_find
from gradsight.train.lr_find import suggestions


@pytest.fixture(scope="module")
def digits():
    return gs.data.load("digits", seed=0)


def small_mlp():
    return gs.models.mlp(64, 10, depth=3, width=64, activation="relu", seed=0)


def test_suggested_lr_trains_sgd_better_than_a_hundredth_and_a_hundred_times_it(digits):
    result = lr_find(small_mlp(), digits, optimizer="sgd", seed=0)
    losses = {}
    for label, lr in (("low", result.suggestion / 100), ("found", result.suggestion)):
        fitted = gs.fit(small_mlp(), digits, optimizer="sgd", lr=lr, steps=300, batch_size=64)
        losses[label] = fitted.metrics["train_loss"]
    high = gs.fit(
        small_mlp(), digits, optimizer="sgd", lr=result.suggestion * 100, steps=300, batch_size=64
    )
    assert losses["found"] < 0.5 * losses["low"]
    assert high.metrics["diverged"] or not high.metrics["train_loss"] < 2 * losses["found"]


def test_learning_rate_grows_exponentially_and_loss_is_smoothed(digits):
    result = lr_find(small_mlp(), digits, start_lr=1e-4, end_lr=1e-2, num_it=20)
    expected = [1e-4 * 100 ** (i / 19) for i in range(20)]
    assert result.lrs == pytest.approx(expected, rel=1e-12)
    average = 0.0
    for i, (raw, smooth) in enumerate(zip(result.raw_losses, result.losses, strict=True)):
        average = 0.98 * average + 0.02 * raw
        assert smooth == pytest.approx(average / (1 - 0.98 ** (i + 1)), rel=1e-12)
    assert not result.stopped_early


def test_stops_when_the_loss_blows_up(digits):
    result = lr_find(small_mlp(), digits, start_lr=1e-3, end_lr=1e4, num_it=100)
    assert result.stopped_early and len(result.lrs) < 100
    assert result.losses[-1] > 4 * min(result.losses) or not math.isfinite(result.raw_losses[-1])


def test_model_optimizer_and_rng_are_restored(digits):
    model = small_mlp()
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    x, y = digits.split("train")
    digits.loss_fn(model(x[:32]), y[:32]).backward()
    opt.step()
    weights = copy.deepcopy(model.state_dict())
    opt_state = copy.deepcopy(opt.state_dict())
    model.eval()
    torch.manual_seed(123)
    lr_find(model, digits, optimizer=opt, num_it=20)
    after = torch.rand(1)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(1))
    assert not model.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, weights[name]), name
    assert opt.param_groups[0]["lr"] == 3e-4
    restored = opt.state_dict()["state"]
    for key, state in opt_state["state"].items():
        assert torch.equal(restored[key]["exp_avg"], state["exp_avg"])


CURVES = [
    # id, loss at each of 100 lrs (log-spaced 1e-6 .. 1e2), expected (valley, steep, minimum) index
    (
        "descent-then-blow-up",
        [3.0] * 30 + [3.0 - 0.05 * i for i in range(40)] + [1.05 + 0.2 * i for i in range(30)],
        # the descent runs from index 29 (3.0) to 69; valley half way, steep anywhere on it
        {"valley": 49, "minimum": 69},
    ),
    (
        "sharp-drop",
        [2.0] * 50 + [1.0] * 20 + [1.0 + i for i in range(30)],
        {"steep": 49, "minimum": 50},
    ),
]


@pytest.mark.parametrize(("losses", "where"), [c[1:] for c in CURVES], ids=[c[0] for c in CURVES])
def test_suggestions_on_known_curves(losses, where):
    lrs = [1e-6 * 1e8 ** (i / 99) for i in range(100)]
    valley, steep, minimum = suggestions(lrs, losses)
    found = {"valley": valley, "steep": steep, "minimum": minimum * 10}
    for name, index in where.items():
        assert found[name] == pytest.approx(lrs[index], rel=1e-9), name


def test_plot_marks_the_suggestions(digits, tmp_path):
    result = lr_find(small_mlp(), digits, num_it=30, end_lr=1.0)
    fig = result.plot()
    assert isinstance(fig, Figure)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(label.startswith("valley") for label in labels)
    fig.savefig(tmp_path / "lr.png")
    assert (tmp_path / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start_lr": 0.0}, "start_lr must be > 0, got 0.0"),
        ({"start_lr": 1.0, "end_lr": 0.5}, r"end_lr must be > start_lr \(1.0\), got 0.5"),
        ({"num_it": 3}, "num_it must be >= 10, got 3"),
        ({"beta": 1.0}, r"beta must be in \[0, 1\), got 1.0"),
        ({"diverge": 1.0}, "diverge must be > 1, got 1.0"),
        ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
        ({"optimizer": "adamax"}, "unknown optimizer 'adamax'"),
    ],
    ids=["start-lr", "end-lr", "num-it", "beta", "diverge", "batch-size", "optimizer"],
)
def test_bad_arguments_name_the_value(digits, kwargs, message):
    with pytest.raises(ValueError, match=message):
        lr_find(small_mlp(), digits, **kwargs)
