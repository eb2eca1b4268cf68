import pytest
import torch
from torch import nn

from gradsight.models import ACTIVATIONS, activation_options, make_activation
from gradsight.models.activations import CenteredSigmoid

# (name, options, expected class, {attribute: expected value})
CASES = [
    ("sigmoid", {}, nn.Sigmoid, {}),
    ("centered_sigmoid", {}, CenteredSigmoid, {}),
    ("tanh", {}, nn.Tanh, {}),
    ("relu", {}, nn.ReLU, {"inplace": False}),
    ("leaky_relu", {}, nn.LeakyReLU, {"negative_slope": 0.01}),
    ("leaky_relu", {"negative_slope": 0.2}, nn.LeakyReLU, {"negative_slope": 0.2}),
    ("prelu", {}, nn.PReLU, {"num_parameters": 1}),
    ("prelu", {"num_parameters": 8, "init": 0.1}, nn.PReLU, {"num_parameters": 8}),
    ("rrelu", {"lower": 0.1, "upper": 0.2}, nn.RReLU, {"lower": 0.1, "upper": 0.2}),
    ("elu", {}, nn.ELU, {"alpha": 1.0}),
    ("elu", {"alpha": 0.5}, nn.ELU, {"alpha": 0.5}),
    ("gelu", {}, nn.GELU, {"approximate": "none"}),
    ("gelu", {"approximate": "tanh"}, nn.GELU, {"approximate": "tanh"}),
    ("silu", {}, nn.SiLU, {}),
    ("identity", {}, nn.Identity, {}),
]


def _case_id(case):
    name, options = case[0], case[1]
    return name + "".join(f"-{k}={v}" for k, v in options.items())


@pytest.mark.parametrize("name,options,cls,attrs", CASES, ids=[_case_id(c) for c in CASES])
def test_make_activation_builds_configured_module(name, options, cls, attrs):
    module = make_activation(name, **options)
    assert type(module) is cls
    for attr, value in attrs.items():
        assert getattr(module, attr) == value


def test_cases_cover_every_registered_activation():
    assert {case[0] for case in CASES} == set(ACTIVATIONS)


def test_each_call_returns_a_fresh_module():
    assert make_activation("prelu") is not make_activation("prelu")


def test_unknown_activation_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown activation 'relu6'; choose one of: ") as info:
        make_activation("relu6")
    assert all(name in str(info.value) for name in ACTIVATIONS)


@pytest.mark.parametrize(
    "name,options",
    [("leaky_relu", {"slope": 0.2}), ("relu", {"inplace": True}), ("sigmoid", {"alpha": 1})],
    ids=["misspelled", "inplace-refused", "option-of-another"],
)
def test_unknown_option_is_named(name, options):
    (key,) = options
    with pytest.raises(ValueError, match=f"unknown option '{key}' for activation '{name}'"):
        make_activation(name, **options)


def test_activation_options_lists_constructor_options():
    assert activation_options("leaky_relu") == ("negative_slope",)
    assert activation_options("tanh") == ()


def test_centered_sigmoid_is_half_a_tanh_of_half_the_input_with_the_sigmoid_derivative():
    x = torch.linspace(-12, 12, 2001, dtype=torch.float64, requires_grad=True)
    y = make_activation("centered_sigmoid")(x)
    assert torch.allclose(y, torch.tanh(x / 2) / 2, atol=1e-15)
    assert abs(float(y.detach().mean())) < 1e-12  # odd: centred on a symmetric grid
    (slope,) = torch.autograd.grad(y.sum(), x)
    sigmoid = torch.sigmoid(x.detach())
    assert torch.allclose(slope, sigmoid * (1 - sigmoid), atol=1e-15)
    assert float(slope.max()) == pytest.approx(0.25)
