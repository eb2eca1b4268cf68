import re

import pytest
import torch
from torch import nn

from gradsight.models import CELLS, ElmanCell, HiddenStateTap, rnn

B, T, IN, H, OUT = 3, 6, 2, 5, 4

# (id, kwargs, expected output shape)
SHAPES = [
    (
        f"{cell}-{'seq' if seq else 'last'}-{layers}layer",
        {"cell": cell, "sequence_output": seq, "num_layers": layers},
        (B, T, OUT) if seq else (B, OUT),
    )
    for cell in CELLS
    for seq in (False, True)
    for layers in (1, 2)
]


@pytest.mark.parametrize("kwargs,shape", [c[1:] for c in SHAPES], ids=[c[0] for c in SHAPES])
def test_output_and_hidden_shapes(kwargs, shape):
    model = rnn(IN, H, OUT, seed=0, **kwargs)
    x = torch.randn(B, T, IN)
    assert model(x).shape == shape
    out, hiddens = model(x, return_hidden=True)
    assert out.shape == shape
    assert len(hiddens) == T
    assert all(h.shape == (B, H) and h.requires_grad for h in hiddens)


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "identity", "leaky_relu"])
def test_vanilla_cell_takes_any_activation_as_a_module(activation):
    model = rnn(IN, H, OUT, activation=activation, num_layers=2)
    assert isinstance(model.cell2, ElmanCell)
    assert type(model.cell1.act) is type(model.cell2.act)
    assert model.cell1.act is not model.cell2.act


def test_layer_names():
    names = [n for n, _ in rnn(IN, H, OUT, num_layers=2).named_modules()]
    assert names == ["", "cell1", "cell1.ih", "cell1.hh", "cell1.act", "cell2", "cell2.ih",
                     "cell2.hh", "cell2.act", "hidden_tap", "head"]  # fmt: skip
    assert isinstance(rnn(IN, H, OUT, cell="lstm").cell1, nn.LSTMCell)
    assert isinstance(rnn(IN, H, OUT, cell="gru").cell1, nn.GRUCell)


@pytest.mark.parametrize("cell", CELLS)
def test_hidden_tap_hook_sees_every_step(cell):
    model = rnn(IN, H, OUT, cell=cell, num_layers=2)
    assert isinstance(model.hidden_tap, HiddenStateTap)
    seen = []
    handle = model.hidden_tap.register_forward_hook(lambda m, i, o: seen.append(o))
    _, hiddens = model(torch.randn(B, T, IN), return_hidden=True)
    handle.remove()
    assert len(seen) == T
    assert all(a is b for a, b in zip(seen, hiddens, strict=True))


def test_single_feature_sequences_may_come_without_a_feature_axis():
    model = rnn(1, H, OUT, seed=0)
    x = torch.randn(B, T)
    torch.testing.assert_close(model(x), model(x.unsqueeze(-1)))


@pytest.mark.parametrize(
    "shape", [(B, T, IN + 1), (B, IN), (B, 0, IN)], ids=["features", "rank2", "empty"]
)
def test_bad_input_shapes(shape):
    with pytest.raises(ValueError, match=re.escape(f"expected inputs (B, T, {IN}) with T >= 1")):
        rnn(IN, H, OUT)(torch.randn(shape))


def _loss(out):
    return (out**2).sum() / 2


def test_hidden_gradients_match_hand_written_bptt():
    """dL/dh_t = dL/dh_t|direct + W_hh^T (dL/dh_{t+1} * (1 - h_{t+1}^2)) for a tanh cell."""
    torch.manual_seed(0)
    model = rnn(IN, H, OUT, sequence_output=True).double()
    x = torch.randn(B, T, IN, dtype=torch.float64)
    out, hiddens = model(x, return_hidden=True)
    grads = torch.autograd.grad(_loss(out), hiddens)

    w_ih, b, w_hh = model.cell1.ih.weight, model.cell1.ih.bias, model.cell1.hh.weight
    w_out, b_out = model.head.weight, model.head.bias
    with torch.no_grad():
        h, hs = torch.zeros(B, H, dtype=torch.float64), []
        for t in range(T):
            h = torch.tanh(x[:, t] @ w_ih.T + b + h @ w_hh.T)
            hs.append(h)
        expected = [None] * T
        carry = torch.zeros(B, H, dtype=torch.float64)  # dL/dh_{t+1} * tanh'(pre-activation)
        for t in reversed(range(T)):
            direct = (hs[t] @ w_out.T + b_out) @ w_out  # d(|y_t|^2 / 2)/dh_t
            expected[t] = direct + carry @ w_hh
            carry = expected[t] * (1 - hs[t] ** 2)
    for t in range(T):
        torch.testing.assert_close(grads[t], expected[t], rtol=0, atol=1e-10)


def test_linear_identity_rnn_has_constant_hidden_gradients():
    """With h_t = x_t + h_{t-1} and L = sum(head(h_T)), dL/dh_t = sum of head rows for all t."""
    model = rnn(IN, H, OUT, activation="identity").double()
    with torch.no_grad():
        model.cell1.hh.weight.copy_(torch.eye(H))
    out, hiddens = model(torch.randn(B, T, IN, dtype=torch.float64), return_hidden=True)
    grads = torch.autograd.grad(out.sum(), hiddens)
    expected = model.head.weight.sum(0).expand(B, H)
    for g in grads:
        torch.testing.assert_close(g, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_hidden_gradients_match_finite_differences(cell):
    """Perturbs h_t through a hook on the tap, so the change flows on through the recurrence."""
    torch.manual_seed(0)
    model = rnn(IN, 3, 2, cell=cell, num_layers=2, sequence_output=True).double()
    x = torch.randn(1, 4, IN, dtype=torch.float64)
    out, hiddens = model(x, return_hidden=True)
    grads = torch.autograd.grad(_loss(out), hiddens)

    def loss_with(step, unit, eps):
        calls = []

        def nudge(module, inputs, output):
            calls.append(None)
            if len(calls) - 1 == step:
                output = output.clone()
                output[:, unit] += eps
            return output

        handle = model.hidden_tap.register_forward_hook(nudge)
        with torch.no_grad():
            value = _loss(model(x)).item()
        handle.remove()
        return value

    eps = 1e-6
    for step in range(4):
        for unit in range(3):
            numeric = (loss_with(step, unit, eps) - loss_with(step, unit, -eps)) / (2 * eps)
            assert grads[step][0, unit].item() == pytest.approx(numeric, abs=1e-7)


def test_seed_repeats_weights_and_keeps_the_global_rng():
    state = torch.random.get_rng_state()
    a, b = rnn(IN, H, OUT, cell="lstm", seed=4), rnn(IN, H, OUT, cell="lstm", seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


BAD = [
    ("cell", {"cell": "transformer"}, "unknown cell 'transformer'; choose one of: rnn, lstm, gru"),
    (
        "lstm-relu",
        {"cell": "lstm", "activation": "relu"},
        "cell 'lstm' uses tanh; activation 'relu' needs cell 'rnn'",
    ),
    (
        "gru-options",
        {"cell": "gru", "activation_options": {"alpha": 1}},
        "unknown option 'alpha' for activation 'tanh'",
    ),
    (
        "activation",
        {"activation": "softsign"},
        "unknown activation 'softsign'; choose one of: sigmoid",
    ),
    ("hidden", {"hidden_size": 0}, "hidden_size must be an int >= 1, got 0"),
    ("layers", {"num_layers": 0}, "num_layers must be an int >= 1, got 0"),
    ("sequence", {"sequence_output": "yes"}, "sequence_output must be a bool, got 'yes'"),
    ("init", {"init": "identity"}, "unknown init 'identity'; choose one of: default"),
]


@pytest.mark.parametrize("kwargs,message", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_arguments_raise_value_errors(kwargs, message):
    args = {"input_size": IN, "hidden_size": H, "output_size": OUT, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        rnn(**args)
