import math
import re

import pytest
import torch
from torch import nn

from gradsight.models import INITS, initialize, rnn, seeded

FAN_IN, FAN_OUT = 1000, 3000  # a Linear(1000, 3000) holds 3M weights: std estimates to ~0.1%

# (scheme, options, expected std, uniform bound or None)
XAVIER_BOUND = math.sqrt(6 / (FAN_IN + FAN_OUT))
HE_BOUND = math.sqrt(6 / FAN_IN)
STATS = [
    ("normal", {}, 0.01, None),
    ("normal", {"std": 0.1}, 0.1, None),
    ("uniform", {}, 0.05 / math.sqrt(3), 0.05),
    ("uniform", {"a": 0.2}, 0.2 / math.sqrt(3), 0.2),
    ("xavier_uniform", {}, XAVIER_BOUND / math.sqrt(3), XAVIER_BOUND),
    ("xavier_uniform", {"gain": 2.0}, 2 * XAVIER_BOUND / math.sqrt(3), 2 * XAVIER_BOUND),
    ("xavier_normal", {}, math.sqrt(2 / (FAN_IN + FAN_OUT)), None),
    ("he_uniform", {}, math.sqrt(2 / FAN_IN), HE_BOUND),
    ("he_normal", {}, math.sqrt(2 / FAN_IN), None),
    ("lecun_normal", {}, 1 / math.sqrt(FAN_IN), None),
]


def _id(scheme, options):
    return scheme + "".join(f"-{k}={v}" for k, v in options.items())


@pytest.fixture(scope="module")
def big_linear():
    torch.manual_seed(0)
    return nn.Linear(FAN_IN, FAN_OUT)


@pytest.mark.parametrize("scheme,options,std,bound", STATS, ids=[_id(s, o) for s, o, _, _ in STATS])
def test_weight_statistics_match_the_formula(big_linear, scheme, options, std, bound):
    initialize(big_linear, scheme, **options)
    w = big_linear.weight.detach()
    assert w.std().item() == pytest.approx(std, rel=0.05)
    assert abs(w.mean().item()) < 0.05 * std
    if bound is not None:
        assert w.abs().max().item() <= bound
        assert w.abs().max().item() > 0.99 * bound
    assert torch.count_nonzero(big_linear.bias) == 0


@pytest.mark.parametrize("gain", [1.0, 0.5], ids=["gain1", "gain0.5"])
@pytest.mark.parametrize(
    "shape", [(128, 128), (160, 80), (80, 160)], ids=["square", "tall", "wide"]
)
def test_orthogonal_rows_or_columns_are_orthonormal(shape, gain):
    layer = nn.Linear(shape[1], shape[0])
    initialize(layer, "orthogonal", gain=gain)
    w = layer.weight.detach().double()
    gram = w @ w.T if shape[0] <= shape[1] else w.T @ w
    torch.testing.assert_close(
        gram, gain**2 * torch.eye(min(shape), dtype=torch.float64), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize(
    "conv", [nn.Conv1d(64, 128, 5), nn.Conv2d(64, 128, 3)], ids=["conv1d", "conv2d"]
)
def test_conv_fan_in_counts_kernel_elements(conv):
    initialize(conv, "he_normal")
    fan_in = 64 * math.prod(conv.kernel_size)
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.05)


@pytest.mark.parametrize("scheme", [s for s in INITS if s != "default"])
def test_biases_take_bias_init(scheme):
    model = nn.Sequential(nn.Linear(4, 8), nn.Conv1d(8, 8, 3))
    initialize(model, scheme, bias_init=0.3)
    for layer in model:
        assert torch.equal(layer.bias, torch.full_like(layer.bias, 0.3))


def test_default_leaves_torch_values_as_they_are():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    initialize(model, "default")
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_default_refuses_a_bias_init_it_would_ignore():
    with pytest.raises(
        ValueError, match=re.escape("bias_init has no effect with init 'default', got 0.1")
    ):
        initialize(nn.Linear(2, 2), "default", bias_init=0.1)


def test_norm_layers_get_weight_one_bias_zero():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.LayerNorm(4), nn.GroupNorm(1, 4))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(7.0)
    initialize(model, "he_normal")
    for norm in model[1:]:
        assert torch.equal(norm.weight, torch.ones(4))
        assert torch.equal(norm.bias, torch.zeros(4))


@pytest.mark.parametrize(
    "cell,gates", [(nn.LSTMCell, 4), (nn.GRUCell, 3), (nn.RNNCell, 1)], ids=["lstm", "gru", "rnn"]
)
def test_recurrent_cells_are_initialised_gate_by_gate(cell, gates):
    hidden, inputs = 64, 16
    module = cell(inputs, hidden)
    initialize(module, "orthogonal", bias_init=0.5)
    for block in module.weight_hh.detach().double().chunk(gates):
        torch.testing.assert_close(
            block @ block.T, torch.eye(hidden, dtype=torch.float64), atol=1e-5, rtol=0
        )
    initialize(module, "xavier_uniform", bias_init=0.5)
    bound = math.sqrt(6 / (inputs + hidden))  # the fans of one gate, not of the stack
    for block in module.weight_ih.detach().chunk(gates):
        assert block.abs().max().item() <= bound
        assert block.abs().max().item() > 0.9 * bound
    # b_hh is zeroed so the effective bias b_ih + b_hh is bias_init
    assert torch.equal(module.bias_ih, torch.full_like(module.bias_ih, 0.5))
    assert torch.count_nonzero(module.bias_hh) == 0


def test_fused_lstm_parameters_are_initialised():
    module = nn.LSTM(8, 32, num_layers=2)
    initialize(module, "orthogonal", bias_init=1.0)
    for layer in range(2):
        w = getattr(module, f"weight_hh_l{layer}").detach().double()
        for block in w.chunk(4):
            torch.testing.assert_close(
                block @ block.T, torch.eye(32, dtype=torch.float64), atol=1e-5, rtol=0
            )
        assert torch.equal(getattr(module, f"bias_ih_l{layer}"), torch.ones(128))
        assert torch.count_nonzero(getattr(module, f"bias_hh_l{layer}")) == 0


def test_vanilla_rnn_weights_are_walked():
    model = rnn(3, 50, 2, init="orthogonal")
    w = model.cell1.hh.weight.detach().double()
    torch.testing.assert_close(w @ w.T, torch.eye(50, dtype=torch.float64), atol=1e-5, rtol=0)


def test_unknown_scheme_lists_the_valid_names():
    with pytest.raises(
        ValueError, match="unknown init 'glorot'; choose one of: " + ", ".join(INITS)
    ):
        initialize(nn.Linear(2, 2), "glorot")


@pytest.mark.parametrize(
    "scheme,options,match",
    [
        ("normal", {"sigma": 1.0}, "unknown option 'sigma' for init 'normal'; valid options: std"),
        (
            "he_normal",
            {"gain": 2.0},
            "unknown option 'gain' for init 'he_normal'; valid options: none",
        ),
        ("normal", {"std": 0.0}, "std must be a finite number > 0, got 0.0"),
        ("uniform", {"a": -1}, "a must be a finite number > 0, got -1"),
        ("orthogonal", {"gain": float("nan")}, "gain must be a finite number, got nan"),
        ("normal", {}, None),
    ],
    ids=["unknown-option", "option-of-another", "zero-std", "negative-a", "nan-gain", "ok"],
)
def test_bad_options_raise_before_any_weight_changes(scheme, options, match):
    layer = nn.Linear(3, 3)
    before = layer.weight.detach().clone()
    if match is None:
        initialize(layer, scheme, **options)
        assert not torch.equal(layer.weight, before)
        return
    with pytest.raises(ValueError, match=match):
        initialize(layer, scheme, **options)
    assert torch.equal(layer.weight, before)


def test_bad_bias_init():
    with pytest.raises(ValueError, match="bias_init must be a finite number, got 'zero'"):
        initialize(nn.Linear(2, 2), "normal", bias_init="zero")


def test_seeded_restores_the_global_rng_and_repeats_draws():
    state = torch.random.get_rng_state()
    with seeded(3):
        a = torch.randn(5)
    with seeded(3):
        b = torch.randn(5)
    assert torch.equal(a, b)
    assert torch.equal(torch.random.get_rng_state(), state)
    with pytest.raises(ValueError, match="seed must be an int >= 0, got -1"), seeded(-1):
        pass
