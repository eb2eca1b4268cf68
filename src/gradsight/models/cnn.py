"""Small convolutional nets for 8x8 images and 1D signals: a plain `cnn` and a `resnet`."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from torch import nn

from gradsight.checks import check_int, check_options_dict
from gradsight.errors import InputError
from gradsight.models._validate import check_layer_choices
from gradsight.models.activations import make_activation
from gradsight.models.init import initialize, seeded
from gradsight.models.layers import Reshape, Residual
from gradsight.models.norm import make_norm


def conv_input_shape(
    in_shape: int | Sequence[int], spatial_dims: int | None = None
) -> tuple[int, ...]:
    """The (C, *spatial) shape a conv net reshapes its inputs to.

    (L,) is a 1D signal and (C, H, W) an image. A pair is ambiguous: (1, L) with a leading 1
    is read as a one-channel signal and any other (H, W) as a one-channel image, unless
    `spatial_dims` says otherwise (1: the pair is (C, L); 2: it is (H, W)).

    Args:
        in_shape: Shape of one example (an int is a 1D signal of that length).
        spatial_dims: 1 or 2 to fix the reading of a pair; None to infer it.

    Returns:
        (1, L), (C, L) or (C, H, W).

    Raises:
        InputError: If the shape has no positive sizes, is of rank above 3, or contradicts
            `spatial_dims`.
    """
    shape = (in_shape,) if isinstance(in_shape, int) else tuple(in_shape)
    if not 1 <= len(shape) <= 3 or any(
        isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape
    ):
        raise InputError(f"in_shape must be 1 to 3 positive ints, got {in_shape!r}")
    if spatial_dims not in (None, 1, 2) or isinstance(spatial_dims, bool):
        raise InputError(f"spatial_dims must be None, 1 or 2, got {spatial_dims!r}")
    if len(shape) == 2:
        if spatial_dims is None:
            spatial_dims = 1 if shape[0] == 1 else 2
        return shape if spatial_dims == 1 else (1, *shape)
    inferred = 1 if len(shape) == 1 else 2
    if spatial_dims not in (None, inferred):
        raise InputError(f"in_shape {in_shape!r} has {inferred} spatial dims, not {spatial_dims}")
    return (1, *shape) if len(shape) == 1 else shape


def _conv(dims: int, c_in: int, c_out: int, kernel_size: int) -> nn.Module:
    conv = nn.Conv2d if dims == 2 else nn.Conv1d
    return conv(c_in, c_out, kernel_size, padding="same")


def _named(*pairs: tuple[str, nn.Module | None]) -> list[tuple[str, nn.Module]]:
    """The (name, module) pairs whose module is not None (norm is None without a norm)."""
    return [(name, module) for name, module in pairs if module is not None]


def _check_common(
    kernel_size: int, activation_options: Any, init_options: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    check_int("kernel_size", kernel_size, 1)
    act_options = check_options_dict("activation_options", activation_options)
    return act_options, check_options_dict("init_options", init_options)


def cnn(
    in_shape: int | Sequence[int],
    out_features: int,
    channels: Sequence[int] = (16, 32),
    kernel_size: int = 3,
    activation: str = "relu",
    init: str = "default",
    norm: str | None = None,
    bias_init: float = 0.0,
    pool_size: int = 2,
    spatial_dims: int | None = None,
    activation_options: dict[str, Any] | None = None,
    init_options: dict[str, Any] | None = None,
    seed: int | None = None,
) -> nn.Sequential:
    """A plain conv net: stages of conv (same padding) -> norm -> act, then pool and a head.

    Layers are named reshape, conv1, norm1, act1, conv2, ..., pool, flatten, head. The pool
    averages each channel down to `pool_size` positions per spatial dim (2x2 for an image),
    so the head still sees coarse positions; `pool_size=1` is global average pooling.

    Args:
        in_shape: Shape of one example: (1, 8, 8) or (8, 8) for images, (1, 40) or (40,) for
            signals; see `conv_input_shape`. Inputs may come flat, (B, prod(in_shape)).
        out_features: Number of logits.
        channels: Output channels of each conv stage.
        kernel_size: Kernel size of every conv.
        activation: A name from `ACTIVATIONS`.
        init: A name from `INITS`, applied with `initialize` once the model is built.
        norm: None, "none", "batch" or "layer" (GroupNorm with one group) after each conv.
        bias_init: Value of every bias (schemes other than "default").
        pool_size: Positions per spatial dim left by the adaptive average pool.
        spatial_dims: 1 or 2 to fix how a 2-element `in_shape` is read.
        activation_options: Options of the activation.
        init_options: Options of the init scheme.
        seed: If given, weights come from `torch.manual_seed(seed)`; the global RNG is kept.

    Returns:
        The model; it maps (B, *in_shape) or (B, prod(in_shape)) to logits (B, out_features).

    Raises:
        InputError: If an argument is out of range or a name is unknown.
    """
    shape = conv_input_shape(in_shape, spatial_dims)
    dims = len(shape) - 1
    check_int("out_features", out_features, 1)
    channels = tuple(channels)
    if not channels:
        raise InputError(f"channels must name at least one stage, got {channels!r}")
    for c in channels:
        check_int("channels", c, 1)
    check_int("pool_size", pool_size, 1)
    act_options, init_opts = _check_common(kernel_size, activation_options, init_options)
    check_layer_choices(activation, act_options, init, init_opts, norm)

    with seeded(seed):
        layers: OrderedDict[str, nn.Module] = OrderedDict(reshape=Reshape(shape))
        for i, c_out in enumerate(channels, start=1):
            c_in = shape[0] if i == 1 else channels[i - 2]
            conv = _conv(dims, c_in, c_out, kernel_size)
            norm_layer = make_norm(norm, c_out, dims)
            act = make_activation(activation, **act_options)
            layers.update(_named((f"conv{i}", conv), (f"norm{i}", norm_layer), (f"act{i}", act)))
        pool = nn.AdaptiveAvgPool2d(pool_size) if dims == 2 else nn.AdaptiveAvgPool1d(pool_size)
        layers.update(pool=pool, flatten=nn.Flatten())
        layers["head"] = nn.Linear(channels[-1] * pool_size**dims, out_features)
        model = nn.Sequential(layers)
        initialize(model, init, bias_init=bias_init, **init_opts)
    return model


def resnet(
    in_shape: int | Sequence[int],
    out_features: int,
    depth: int = 4,
    channels: int = 16,
    kernel_size: int = 3,
    activation: str = "relu",
    init: str = "default",
    norm: str | None = "batch",
    residual: bool = True,
    bias_init: float = 0.0,
    spatial_dims: int | None = None,
    activation_options: dict[str, Any] | None = None,
    init_options: dict[str, Any] | None = None,
    seed: int | None = None,
) -> nn.Sequential:
    """A residual conv net (He et al. 2016) or its plain counterpart of the same layers.

    stem: conv -> norm -> act (in_channels -> channels). Then `depth` blocks, each
    y = act(x + F(x)) with F = conv -> norm -> act -> conv -> norm at constant width; with
    `residual=False` the skip is dropped, y = act(F(x)), and nothing else changes (same
    layers, same parameter count). Then global average pooling and a Linear head.

    Layers are named reshape, stem, stem_norm, stem_act, block1, act1, ..., blockD, actD,
    pool, flatten, head. Residual blocks are `Residual` modules whose `body` holds conv1,
    norm1, act1, conv2, norm2; plain blocks are that Sequential itself.

    Args:
        in_shape: Shape of one example, as for `cnn` (1D or 2D).
        out_features: Number of logits.
        depth: Number of blocks (>= 1), two convs each.
        channels: Channels of the stem and every block.
        kernel_size: Kernel size of every conv.
        activation: A name from `ACTIVATIONS`.
        init: A name from `INITS`, applied with `initialize` once the model is built.
        norm: "batch" (default), "layer", None or "none".
        residual: Whether blocks add their input back (the skip connection).
        bias_init: Value of every bias (schemes other than "default").
        spatial_dims: 1 or 2 to fix how a 2-element `in_shape` is read.
        activation_options: Options of the activation.
        init_options: Options of the init scheme.
        seed: If given, weights come from `torch.manual_seed(seed)`; the global RNG is kept.

    Returns:
        The model; it maps (B, *in_shape) or (B, prod(in_shape)) to logits (B, out_features).

    Raises:
        InputError: If an argument is out of range or a name is unknown.
    """
    shape = conv_input_shape(in_shape, spatial_dims)
    dims = len(shape) - 1
    check_int("out_features", out_features, 1)
    check_int("depth", depth, 1)
    check_int("channels", channels, 1)
    if not isinstance(residual, bool):
        raise InputError(f"residual must be a bool, got {residual!r}")
    act_options, init_opts = _check_common(kernel_size, activation_options, init_options)
    check_layer_choices(activation, act_options, init, init_opts, norm)

    def conv(c_in: int) -> nn.Module:
        return _conv(dims, c_in, channels, kernel_size)

    def norm_layer() -> nn.Module | None:
        return make_norm(norm, channels, dims)

    def act() -> nn.Module:
        return make_activation(activation, **act_options)

    with seeded(seed):
        layers: OrderedDict[str, nn.Module] = OrderedDict(reshape=Reshape(shape))
        layers.update(
            _named(("stem", conv(shape[0])), ("stem_norm", norm_layer()), ("stem_act", act()))
        )
        for i in range(1, depth + 1):
            body = _named(
                ("conv1", conv(channels)),
                ("norm1", norm_layer()),
                ("act1", act()),
                ("conv2", conv(channels)),
                ("norm2", norm_layer()),
            )
            block = nn.Sequential(OrderedDict(body))
            layers[f"block{i}"] = Residual(block) if residual else block
            layers[f"act{i}"] = act()
        pool = nn.AdaptiveAvgPool2d(1) if dims == 2 else nn.AdaptiveAvgPool1d(1)
        layers.update(pool=pool, flatten=nn.Flatten())
        layers["head"] = nn.Linear(channels, out_features)
        model = nn.Sequential(layers)
        initialize(model, init, bias_init=bias_init, **init_opts)
    return model
