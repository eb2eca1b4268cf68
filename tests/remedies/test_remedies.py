"""Each remedy applies to a copy (the original untouched) or says why it cannot."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import gradsight as gs
from gradsight.diagnosis.finding import REMEDIES
from gradsight.remedies import REMEDY_FUNCTIONS, NotApplicable, apply_remedies


@pytest.fixture(scope="module")
def task() -> gs.Task:
    return gs.data.load("digits", seed=0)


def sigmoid_mlp() -> nn.Module:
    return gs.models.mlp(64, 10, depth=4, width=16, activation="sigmoid", seed=0)


class FunctionalNet(nn.Module):
    """A user model whose activation is a function call: nothing to swap, no Sequential."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(64, 16)
        self.b = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.sigmoid(self.a(x)))


class Nested(nn.Module):
    """Activations in a ModuleList and a plain attribute, layers in an inner Sequential."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 16))
        self.acts = nn.ModuleList([nn.Sigmoid()])
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.acts[0](self.body(x)))


class SlotAttention(nn.Module):
    """Two-head self-attention whose q_norm/k_norm are disabled (nn.Identity), as timm's
    Attention(qk_norm=False) leaves them."""

    def __init__(self, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm, self.k_norm = nn.Identity(), nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q), self.k_norm(k)
        out = torch.softmax(q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5, dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(n, t, d))


class SlotNet(nn.Module):
    """A Pre-LN block on 4 tokens of 16 features whose LayerNorms were replaced by
    nn.Identity (ln_1, ln_f), as GPT-2 without its layer norms."""

    def __init__(self) -> None:
        super().__init__()
        self.ln_1, self.ln_f = nn.Identity(), nn.Identity()
        self.attn = SlotAttention()
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.view(len(x), 4, 16)
        h = h + self.attn(self.ln_1(h))
        return self.head(self.ln_f(h).mean(1))


def layer_norms(model: nn.Module) -> list[int]:
    return [m.normalized_shape[0] for m in model.modules() if isinstance(m, nn.LayerNorm)]


def types(model: nn.Module) -> list[type]:
    return [type(m) for m in model.modules()]


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


SGD = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.0, "weight_decay": 0.0, "clip_norm": None}

# (id, remedy, model builder, settings, check of the treatment)
APPLIES = [
    ("relu", "relu_activation", sigmoid_mlp, SGD,
     lambda t: nn.ReLU in types(t.model) and nn.Sigmoid not in types(t.model)),
    ("relu-nested", "relu_activation", Nested, SGD,
     lambda t: types(t.model).count(nn.ReLU) == 2 and nn.Tanh not in types(t.model)),
    ("leaky", "leaky_relu_activation", sigmoid_mlp, SGD,
     lambda t: nn.LeakyReLU in types(t.model) and nn.Sigmoid not in types(t.model)),
    ("elu", "elu_activation", sigmoid_mlp, SGD,
     lambda t: nn.ELU in types(t.model) and nn.Sigmoid not in types(t.model)),
    ("he", "he_init", sigmoid_mlp, SGD,
     lambda t: abs(t.model.fc2.weight.std().item() - (2 / 16) ** 0.5) < 0.1),
    ("glorot", "glorot_init", FunctionalNet, SGD,
     lambda t: t.model.a.weight.abs().max().item() <= (6 / 80) ** 0.5 + 1e-6),
    ("batch-norm", "batch_norm", sigmoid_mlp, SGD,
     lambda t: types(t.model).count(nn.BatchNorm1d) == 3),
    ("batch-norm-nested", "batch_norm", Nested, SGD,
     lambda t: types(t.model).count(nn.BatchNorm1d) == 1),
    ("clip", "gradient_clipping", sigmoid_mlp, SGD, lambda t: t.settings["clip_norm"] == 1.0),
    ("decay", "weight_decay", sigmoid_mlp, SGD, lambda t: t.settings["weight_decay"] > 0),
    ("lower-lr", "lower_learning_rate", sigmoid_mlp, SGD,
     lambda t: t.settings["lr"] == pytest.approx(0.01)),
    ("raise-lr-default", "raise_learning_rate", sigmoid_mlp, {"optimizer": "sgd"},
     lambda t: t.settings["lr"] == pytest.approx(0.1)),
    ("momentum", "momentum", sigmoid_mlp, SGD, lambda t: t.settings["momentum"] == 0.9),
    ("adam", "adaptive_optimizer", sigmoid_mlp, SGD, lambda t: t.settings["optimizer"] == "adam"),
    ("lstm", "lstm_cell", lambda: gs.models.rnn(1, 8, 1, seed=0), SGD,
     lambda t: t.model.cell == "lstm"),
    ("warmup", "lr_warmup", sigmoid_mlp, SGD,
     lambda t: t.settings["schedule_options"] == {"warmup_fraction": 0.1}),
    ("layer-norm", "layer_norm", sigmoid_mlp, SGD, lambda t: layer_norms(t.model) == [16] * 3),
    ("layer-norm-slots", "layer_norm", SlotNet, SGD,
     lambda t: layer_norms(t.model) == [16, 16] and type(t.model.attn.q_norm) is nn.Identity),
    ("qk-norm", "qk_norm", SlotNet, SGD,
     lambda t: layer_norms(t.model) == [8, 8] and type(t.model.ln_1) is nn.Identity),
]  # fmt: skip


@pytest.mark.parametrize(("name", "build", "settings", "check"),
                         [c[1:] for c in APPLIES], ids=[c[0] for c in APPLIES])  # fmt: skip
def test_remedy_applies_to_a_copy(name, build, settings, check, task) -> None:
    model = build()
    before, before_types = state(model), types(model)
    treatment = REMEDY_FUNCTIONS[name](model, dict(settings), task, seed=0)
    assert check(treatment)
    assert treatment.model is not model
    assert types(model) == before_types
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert treatment.names == (name,) and treatment.changes[0]


def test_changed_models_still_run(task) -> None:
    for name in ("relu_activation", "batch_norm", "he_init", "layer_norm"):
        model = REMEDY_FUNCTIONS[name](sigmoid_mlp(), SGD, task).model
        assert model(task.x_train[:8]).shape == (8, 10)
    for name in ("layer_norm", "qk_norm"):
        model = REMEDY_FUNCTIONS[name](SlotNet(), SGD, task).model
        assert model(task.x_train[:8]).shape == (8, 10)


# (id, remedy, model builder, settings, words in the reason)
NOT_APPLICABLE = [
    ("relu-functional", "relu_activation", FunctionalNet, SGD, "cannot be swapped"),
    ("lstm-not-rnn", "lstm_cell", sigmoid_mlp, SGD, "RecurrentNet"),
    ("momentum-adam", "momentum", sigmoid_mlp, {**SGD, "optimizer": "adam"}, "already"),
    ("adam-adam", "adaptive_optimizer", sigmoid_mlp, {**SGD, "optimizer": "adam"}, "adaptive"),
    ("clip-clipped", "gradient_clipping", sigmoid_mlp, {**SGD, "clip_norm": 5.0}, "already"),
    ("standardised", "normalize_inputs", sigmoid_mlp, SGD, "already standardised"),
    ("residual", "residual_connections", sigmoid_mlp, SGD, "not added automatically"),
    ("warmup-one-cycle", "lr_warmup", sigmoid_mlp, {**SGD, "schedule": "one_cycle"},
     "sets the start"),
    ("warmup-already", "lr_warmup", sigmoid_mlp,
     {**SGD, "schedule_options": {"warmup_steps": 10}}, "already warms up"),
    ("layer-norm-functional", "layer_norm", FunctionalNet, SGD, "no place to put LayerNorm"),
    ("qk-norm-mlp", "qk_norm", sigmoid_mlp, SGD, "no q_norm/k_norm slot"),
    ("qk-norm-inline", "qk_norm", lambda: nn.MultiheadAttention(16, 2), SGD,
     "1 attention modules, but no q_norm"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "build", "settings", "words"),
    [c[1:] for c in NOT_APPLICABLE],
    ids=[c[0] for c in NOT_APPLICABLE],
)
def test_remedy_says_why_it_does_not_apply(name, build, settings, words, task) -> None:
    with pytest.raises(NotApplicable, match=words):
        REMEDY_FUNCTIONS[name](build(), settings, task)


def test_normalize_inputs_standardises_raw_inputs() -> None:
    raw = gs.data.load("digits", seed=0, standardize=False)
    treatment = REMEDY_FUNCTIONS["normalize_inputs"](sigmoid_mlp(), SGD, raw)
    x = treatment.task.x_train
    varying = x.std(0) > 1e-6
    assert treatment.task is not raw and raw.x_train.mean() > 1
    assert x.mean(0).abs().max() < 1e-4
    assert torch.allclose(x.std(0)[varying], torch.ones(int(varying.sum())), atol=1e-4)


def test_every_remedy_name_has_a_function() -> None:
    assert set(REMEDY_FUNCTIONS) == set(REMEDIES)


def test_apply_remedies_chains_and_names_the_combination(task) -> None:
    treatment = apply_remedies(["relu_activation", "momentum"], sigmoid_mlp(), SGD, task)
    assert treatment.name == "relu_activation+momentum"
    assert nn.ReLU in types(treatment.model) and treatment.settings["momentum"] == 0.9
    assert len(treatment.changes) == 2
    with pytest.raises(NotApplicable, match="lstm_cell: only"):
        apply_remedies(["relu_activation", "lstm_cell"], sigmoid_mlp(), SGD, task)
    with pytest.raises(ValueError, match="unknown remedy"):
        apply_remedies(["relu"], sigmoid_mlp(), SGD, task)
