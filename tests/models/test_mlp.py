import re

import pytest
import torch
from torch import nn

from gradsight.models import Residual, mlp

# (id, kwargs, expected top-level module names)
SHAPES = [
    ("depth1", {"depth": 1}, ["fc1"]),
    ("depth3", {"depth": 3}, ["fc1", "act1", "fc2", "act2", "fc3"]),
    ("depth3-batch", {"depth": 3, "norm": "batch"},
     ["fc1", "norm1", "act1", "fc2", "norm2", "act2", "fc3"]),
    ("depth3-layer-dropout", {"depth": 3, "norm": "layer", "dropout": 0.1},
     ["fc1", "norm1", "act1", "drop1", "fc2", "norm2", "act2", "drop2", "fc3"]),
    ("depth2-residual", {"depth": 2, "residual": True}, ["fc1", "act1", "fc2"]),
    ("depth4-residual", {"depth": 4, "residual": True},
     ["fc1", "act1", "block2", "block3", "fc4"]),
    ("depth4-residual-batch", {"depth": 4, "residual": True, "norm": "batch"},
     ["fc1", "norm1", "act1", "block2", "block3", "fc4"]),
    ("depth12", {"depth": 12},
     [f"{kind}{i}" for i in range(1, 12) for kind in ("fc", "act")] + ["fc12"]),
]  # fmt: skip


@pytest.mark.parametrize("kwargs,names", [c[1:] for c in SHAPES], ids=[c[0] for c in SHAPES])
def test_output_shape_and_layer_names(kwargs, names):
    model = mlp(in_features=7, out_features=3, width=16, seed=0, **kwargs)
    assert [name for name, _ in model.named_children()] == names
    assert model(torch.randn(5, 7)).shape == (5, 3)


def test_twelve_layer_mlp_has_fc1_to_fc12_and_act1_to_act11():
    model = mlp(64, 10, depth=12, activation="sigmoid")
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    acts = [n for n, m in model.named_modules() if isinstance(m, nn.Sigmoid)]
    assert linears == [f"fc{i}" for i in range(1, 13)]
    assert acts == [f"act{i}" for i in range(1, 12)]
    assert (model.fc1.in_features, model.fc12.out_features) == (64, 10)


def test_residual_blocks_wrap_a_sequential_body():
    model = mlp(5, 2, depth=4, width=8, residual=True, norm="layer", dropout=0.2)
    block = model.block2
    assert isinstance(block, Residual)
    assert isinstance(block.body, nn.Sequential)
    assert [n for n, _ in block.body.named_children()] == ["fc", "norm", "act", "drop"]
    x = torch.randn(4, 8)
    block.eval()
    torch.testing.assert_close(block(x), x + block.body(x))


def test_every_layer_gets_its_own_activation_with_the_options():
    model = mlp(4, 2, depth=4, activation="leaky_relu", activation_options={"negative_slope": 0.2})
    acts = [m for m in model.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 3
    assert len({id(a) for a in acts}) == 3
    assert all(a.negative_slope == 0.2 for a in acts)


def test_init_and_bias_init_are_applied():
    model = mlp(400, 2, depth=3, width=400, init="he_normal", bias_init=0.1, seed=0)
    assert model.fc2.weight.std().item() == pytest.approx((2 / 400) ** 0.5, rel=0.05)
    assert torch.equal(model.fc2.bias, torch.full((400,), 0.1))


def test_init_options_are_passed_on():
    model = mlp(300, 2, depth=2, width=300, init="normal", init_options={"std": 0.5}, seed=0)
    assert model.fc1.weight.std().item() == pytest.approx(0.5, rel=0.05)


def test_same_seed_same_weights_and_global_rng_untouched():
    state = torch.random.get_rng_state()
    a = mlp(6, 2, depth=3, seed=1, init="xavier_normal")
    b = mlp(6, 2, depth=3, seed=1, init="xavier_normal")
    c = mlp(6, 2, depth=3, seed=2, init="xavier_normal")
    assert torch.equal(torch.random.get_rng_state(), state)
    for (name, pa), pb, pc in zip(
        a.named_parameters(), b.parameters(), c.parameters(), strict=True
    ):
        assert torch.equal(pa, pb), name
        if name.endswith("weight"):
            assert not torch.equal(pa, pc), name


BAD = [
    ("in_features", {"in_features": 0}, "in_features must be an int >= 1, got 0"),
    ("out_features", {"out_features": 2.5}, "out_features must be an int >= 1, got 2.5"),
    ("depth-zero", {"depth": 0}, "depth must be an int >= 1, got 0"),
    ("depth-str", {"depth": "3"}, "depth must be an int >= 1, got '3'"),
    ("depth-bool", {"depth": True}, "depth must be an int >= 1, got True"),
    ("width", {"width": 0}, "width must be an int >= 1, got 0"),
    ("dropout-one", {"dropout": 1.0}, "dropout must be in [0, 1), got 1.0"),
    ("dropout-negative", {"dropout": -0.1}, "dropout must be in [0, 1), got -0.1"),
    ("residual", {"residual": "yes"}, "residual must be a bool, got 'yes'"),
    ("activation", {"activation": "swish"}, "unknown activation 'swish'; choose one of: sigmoid"),
    ("activation-depth1", {"activation": "swish", "depth": 1}, "unknown activation 'swish'"),
    ("activation-option", {"activation_options": {"slope": 1}}, "unknown option 'slope'"),
    ("init", {"init": "glorot"}, "unknown init 'glorot'; choose one of: default"),
    ("init-option", {"init": "normal", "init_options": {"sd": 1}}, "unknown option 'sd'"),
    ("norm", {"norm": "group"}, "unknown norm 'group'; choose one of: none, batch, layer"),
    ("seed", {"seed": -1}, "seed must be an int >= 0, got -1"),
    ("bias-init", {"init": "normal", "bias_init": None}, "bias_init must be a finite number"),
]


@pytest.mark.parametrize("kwargs,message", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_arguments_raise_one_line_value_errors(kwargs, message):
    args = {"in_features": 4, "out_features": 2, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        mlp(**args)
