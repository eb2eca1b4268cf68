import re

import pytest
import torch
from torch import nn

from gradsight.models import Reshape, Residual, cnn, conv_input_shape, resnet

SHAPES = [
    ("int", 40, None, (1, 40)),
    ("signal", (40,), None, (1, 40)),
    ("signal-channel", (1, 40), None, (1, 40)),
    ("image", (8, 8), None, (1, 8, 8)),
    ("image-channel", (1, 8, 8), None, (1, 8, 8)),
    ("multichannel-signal", (3, 100), 1, (3, 100)),
    ("thin-image", (1, 8), 2, (1, 1, 8)),
]


@pytest.mark.parametrize(
    "in_shape,spatial_dims,expected", [c[1:] for c in SHAPES], ids=[c[0] for c in SHAPES]
)
def test_conv_input_shape(in_shape, spatial_dims, expected):
    assert conv_input_shape(in_shape, spatial_dims) == expected


@pytest.mark.parametrize(
    "in_shape,spatial_dims,message",
    [
        ((), None, "in_shape must be 1 to 3 positive ints, got ()"),
        ((1, 2, 3, 4), None, "in_shape must be 1 to 3 positive ints"),
        ((0, 8), None, "in_shape must be 1 to 3 positive ints, got (0, 8)"),
        ((40,), 2, "in_shape (40,) has 1 spatial dims, not 2"),
        ((8, 8), 3, "spatial_dims must be None, 1 or 2, got 3"),
    ],
    ids=["empty", "rank4", "zero", "contradiction", "bad-dims"],
)
def test_conv_input_shape_rejects(in_shape, spatial_dims, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        conv_input_shape(in_shape, spatial_dims)


# (id, in_shape, batch input shape, kwargs)
CNN_CASES = [
    ("2d-flat", (8, 8), (5, 64), {}),
    ("2d-shaped", (8, 8), (5, 8, 8), {}),
    ("2d-channel", (1, 8, 8), (5, 1, 8, 8), {}),
    ("2d-batchnorm", (1, 8, 8), (5, 64), {"norm": "batch"}),
    ("2d-layernorm-gap", (8, 8), (5, 64), {"norm": "layer", "pool_size": 1}),
    ("1d-flat", (40,), (5, 40), {}),
    ("1d-channel", (1, 40), (5, 1, 40), {"channels": (4, 8, 8), "kernel_size": 5}),
    ("1d-batchnorm", (1, 40), (5, 40), {"norm": "batch", "activation": "tanh"}),
]


@pytest.mark.parametrize(
    "in_shape,x_shape,kwargs", [c[1:] for c in CNN_CASES], ids=[c[0] for c in CNN_CASES]
)
def test_cnn_returns_logits(in_shape, x_shape, kwargs):
    model = cnn(in_shape, 10, seed=0, **kwargs)
    assert model(torch.randn(x_shape)).shape == (5, 10)


def test_cnn_layer_names():
    model = cnn((8, 8), 10, channels=(4, 8), norm="batch")
    names = [n for n, _ in model.named_children()]
    assert names == [
        "reshape",
        "conv1",
        "norm1",
        "act1",
        "conv2",
        "norm2",
        "act2",
        "pool",
        "flatten",
        "head",
    ]
    assert isinstance(model.conv1, nn.Conv2d) and isinstance(model.norm1, nn.BatchNorm2d)
    assert isinstance(cnn((40,), 2).conv1, nn.Conv1d)


def test_reshape_rejects_inputs_of_the_wrong_size():
    with pytest.raises(
        ValueError,
        match=re.escape("expected inputs of shape (B, 64) or (B, *(1, 8, 8)), got (2, 63)"),
    ):
        Reshape((1, 8, 8))(torch.randn(2, 63))


RESNET_CASES = [
    ("2d-residual", (8, 8), (3, 64), {}),
    ("2d-plain", (1, 8, 8), (3, 1, 8, 8), {"residual": False}),
    ("2d-layernorm", (8, 8), (3, 8, 8), {"norm": "layer"}),
    ("1d-residual", (1, 40), (3, 40), {}),
    ("1d-plain-nonorm", (40,), (3, 1, 40), {"residual": False, "norm": None, "depth": 2}),
]


@pytest.mark.parametrize(
    "in_shape,x_shape,kwargs", [c[1:] for c in RESNET_CASES], ids=[c[0] for c in RESNET_CASES]
)
def test_resnet_returns_logits(in_shape, x_shape, kwargs):
    model = resnet(in_shape, 4, channels=8, seed=0, **kwargs)
    assert model(torch.randn(x_shape)).shape == (3, 4)


@pytest.mark.parametrize("norm", ["batch", None], ids=["batch", "no-norm"])
def test_plain_resnet_has_the_same_layers_without_the_skip(norm):
    res = resnet((8, 8), 10, depth=3, norm=norm)
    plain = resnet((8, 8), 10, depth=3, norm=norm, residual=False)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(res) == count(plain)
    shapes = lambda m: [tuple(p.shape) for p in m.parameters()]  # noqa: E731
    assert shapes(res) == shapes(plain)
    assert [n for n, _ in res.named_children()] == [n for n, _ in plain.named_children()]
    assert all(isinstance(res.get_submodule(f"block{i}"), Residual) for i in (1, 2, 3))
    assert not any(isinstance(m, Residual) for m in plain.modules())


def test_resnet_layer_names():
    model = resnet((8, 8), 10, depth=2)
    assert [n for n, _ in model.named_children()] == [
        "reshape", "stem", "stem_norm", "stem_act", "block1", "act1", "block2", "act2",
        "pool", "flatten", "head",
    ]  # fmt: skip
    assert [n for n, _ in model.block1.body.named_children()] == [
        "conv1",
        "norm1",
        "act1",
        "conv2",
        "norm2",
    ]


def test_resnet_block_adds_its_input_back():
    model = resnet((8, 8), 2, depth=1, norm=None, activation="identity", seed=0)
    x = torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(model.block1(x), x + model.block1.body(x))


def test_conv_seed_repeats_weights():
    a, b = cnn((8, 8), 3, seed=5), cnn((8, 8), 3, seed=5)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


BAD = [
    ("cnn-no-channels", cnn, {"channels": ()}, "channels must name at least one stage, got ()"),
    ("cnn-zero-channels", cnn, {"channels": (4, 0)}, "channels must be an int >= 1, got 0"),
    ("cnn-kernel", cnn, {"kernel_size": 0}, "kernel_size must be an int >= 1, got 0"),
    ("cnn-pool", cnn, {"pool_size": 0}, "pool_size must be an int >= 1, got 0"),
    ("cnn-norm", cnn, {"norm": "instance"}, "unknown norm 'instance'; choose one of: none"),
    ("cnn-out", cnn, {"out_features": 0}, "out_features must be an int >= 1, got 0"),
    ("resnet-depth", resnet, {"depth": 0}, "depth must be an int >= 1, got 0"),
    ("resnet-channels", resnet, {"channels": 0}, "channels must be an int >= 1, got 0"),
    ("resnet-residual", resnet, {"residual": 1}, "residual must be a bool, got 1"),
    ("resnet-activation", resnet, {"activation": "mish"}, "unknown activation 'mish'"),
    ("resnet-init", resnet, {"init": "kaiming"}, "unknown init 'kaiming'"),
]


@pytest.mark.parametrize("builder,kwargs,message", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_arguments_raise_value_errors(builder, kwargs, message):
    args = {"in_shape": (8, 8), "out_features": 3, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        builder(**args)
