"""layerwise_pretraining: which models it applies to, what it learns, and that it helps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import gradsight as gs
from gradsight.remedies import NotApplicable, layerwise_pretraining
from gradsight.train import hidden_layers, pretrain_layerwise

SGD = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.0, "weight_decay": 0.0, "clip_norm": None}


@pytest.fixture(scope="module")
def task() -> gs.Task:
    return gs.data.load("digits", seed=0)  # standardised: inputs are not in [0, 1]


def sigmoid_mlp(seed: int = 0) -> nn.Module:
    return gs.models.mlp(64, 10, depth=3, width=16, activation="sigmoid", seed=seed)


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


class Wrapped(nn.Module):
    """A user model: its layers in nested Sequentials under an attribute, with a dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Dropout(0.1)),
            nn.Sequential(nn.Linear(16, 16), nn.Sigmoid()),
            nn.Linear(16, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class NoChain(nn.Module):
    """Linear layers as attributes and a functional sigmoid: no Sequential to read."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(64, 16)
        self.b = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.sigmoid(self.a(x)))


# (id, model builder, hidden layers found)
CHAINS = [
    ("mlp-sigmoid", sigmoid_mlp, ["fc1", "fc2"]),
    ("mlp-tanh", lambda: gs.models.mlp(64, 10, depth=3, width=16, activation="tanh"),
     ["fc1", "fc2"]),
    ("nested", Wrapped, ["net.0.0", "net.1.0"]),
]  # fmt: skip


@pytest.mark.parametrize(("build", "names"), [c[1:] for c in CHAINS], ids=[c[0] for c in CHAINS])
def test_remedy_pretrains_a_copy(build, names, task) -> None:
    model = build()
    before = state(model)
    assert [layer.name for layer in hidden_layers(model)] == names
    treatment = layerwise_pretraining(model, dict(SGD), task, seed=0)
    assert treatment.names == ("layerwise_pretraining",)
    assert "gs.train.pretrain_layerwise(model, x_train" in treatment.changes[0]
    assert treatment.settings == SGD and treatment.task is task
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    changed = treatment.model.state_dict()
    last = list(before)[-1]  # the head's bias: left as it was
    assert not torch.equal(changed[f"{names[0]}.weight"], before[f"{names[0]}.weight"])
    assert torch.equal(changed[last], before[last])
    assert treatment.model(task.x_train[:4]).shape == (4, 10)


def test_remedy_is_deterministic_for_a_seed(task) -> None:
    first, again, other = (
        layerwise_pretraining(sigmoid_mlp(), SGD, task, seed=s).model for s in (1, 1, 2)
    )
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in first.state_dict().items())
    assert not torch.equal(first.fc1.weight, other.fc1.weight)


# (id, model builder, words in the reason)
NOT_APPLICABLE = [
    ("relu", lambda: gs.models.mlp(64, 10, depth=3, width=16, activation="relu"),
     "act1 is a ReLU: .* sigmoid or tanh"),
    ("cnn", lambda: gs.models.cnn((1, 8, 8), 10, channels=(4,)), "conv1 is a Conv2d layer"),
    ("no-chain", NoChain, "no nn.Sequential holding all its layers"),
    ("batch-norm", lambda: gs.models.mlp(64, 10, depth=3, activation="sigmoid", norm="batch"),
     "norm1 is a BatchNorm1d layer"),
    ("residual", lambda: gs.models.mlp(64, 10, depth=3, activation="sigmoid", residual=True),
     "block2 is a Residual layer"),
    ("no-hidden", lambda: gs.models.mlp(64, 10, depth=1), "at least one hidden layer"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("build", "words"), [c[1:] for c in NOT_APPLICABLE], ids=[c[0] for c in NOT_APPLICABLE]
)
def test_remedy_says_why_it_does_not_apply(build, words, task) -> None:
    with pytest.raises(NotApplicable, match=words):
        layerwise_pretraining(build(), SGD, task)


def test_inputs_must_fit_the_first_layer(task) -> None:
    model = gs.models.mlp(32, 10, depth=3, width=16, activation="sigmoid")
    with pytest.raises(NotApplicable, match="do not flatten"):
        layerwise_pretraining(model, SGD, task)


def test_gaussian_autoencoder_beats_the_mean_on_standardised_inputs(task) -> None:
    model = gs.models.mlp(64, 10, depth=3, width=64, activation="sigmoid", seed=0)
    first, second = pretrain_layerwise(model, task.x_train, steps=200, seed=0)
    # Standardised pixels are Gaussian visible units (MSE), sigmoid codes binary ones (BCE).
    assert (first["visible"], second["visible"]) == ("gaussian", "binary")
    assert first["loss"] < 0.3 * first["baseline"]  # ~0.14 vs 0.94, the pixels' mean variance
    assert second["loss"] < second["baseline"]


def test_tanh_codes_are_gaussian_units(task) -> None:
    model = gs.models.mlp(64, 10, depth=3, width=16, activation="tanh", seed=0)
    summary = pretrain_layerwise(model, task.x_train, steps=200, seed=0)
    assert [s["visible"] for s in summary] == ["gaussian", "gaussian"]
    assert all(s["loss"] < s["baseline"] for s in summary)


@pytest.mark.slow
def test_pretraining_lets_a_deep_sigmoid_net_learn(task) -> None:
    def accuracy(pretrained: bool) -> float:
        model = gs.models.mlp(64, 10, depth=8, width=64, activation="sigmoid", seed=0)
        if pretrained:
            model = layerwise_pretraining(model, SGD, task, seed=0).model
        result = gs.fit(model, task, **SGD, steps=300, batch_size=64, seed=0, watch=False)
        return result.metrics["test_accuracy"]

    assert accuracy(pretrained=True) > 0.5 > 0.2 > accuracy(pretrained=False)
