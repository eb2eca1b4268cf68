"""Multilayer perceptrons with readable layer names: fc1, norm1, act1, drop1, ..., fcD."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from torch import nn

from gradsight.checks import check_int, check_number, check_options_dict
from gradsight.errors import InputError
from gradsight.models._validate import check_layer_choices
from gradsight.models.activations import make_activation
from gradsight.models.init import initialize, seeded
from gradsight.models.layers import Residual
from gradsight.models.norm import make_norm


def _hidden(
    fc: nn.Linear, norm: str | None, activation: str, options: dict[str, Any], dropout: float
) -> list[tuple[str, nn.Module]]:
    """(kind, module) pairs of one hidden layer: fc, norm, act, drop (norm/drop when used)."""
    layers: list[tuple[str, nn.Module]] = [("fc", fc)]
    norm_layer = make_norm(norm, fc.out_features, dims=0)
    if norm_layer is not None:
        layers.append(("norm", norm_layer))
    layers.append(("act", make_activation(activation, **options)))
    if dropout > 0:
        layers.append(("drop", nn.Dropout(dropout)))
    return layers


def mlp(
    in_features: int,
    out_features: int,
    depth: int = 4,
    width: int = 128,
    activation: str = "relu",
    init: str = "default",
    norm: str | None = None,
    residual: bool = False,
    bias_init: float = 0.0,
    dropout: float = 0.0,
    activation_options: dict[str, Any] | None = None,
    init_options: dict[str, Any] | None = None,
    seed: int | None = None,
) -> nn.Sequential:
    """A fully connected network of `depth` Linear layers, the last one the output head.

    Each hidden layer computes h = drop(act(norm(W h_prev + b))). Plain networks are an
    `nn.Sequential` named fc1, norm1, act1, drop1, fc2, ..., fcD, so a 12-layer MLP has
    fc1..fc12 and act1..act11. With `residual=True` the first hidden layer (in -> width) stays
    plain and every further hidden layer becomes a block h = h_prev + body(h_prev) named
    block2, block3, ... (He et al. 2016), with body = Sequential(fc, norm, act, drop).

    Args:
        in_features: Size of each input vector.
        out_features: Size of the output (logits or regression values).
        depth: Number of Linear layers, the output head included (>= 1).
        width: Units per hidden layer.
        activation: A name from `ACTIVATIONS`.
        init: A name from `INITS`, applied with `initialize` once the model is built.
        norm: None, "none", "batch" or "layer", after each hidden Linear.
        residual: Whether hidden layers of equal width are residual blocks.
        bias_init: Value of every bias (schemes other than "default").
        dropout: Dropout probability after each hidden activation, in [0, 1).
        activation_options: Options of the activation, e.g. {"negative_slope": 0.2}.
        init_options: Options of the init scheme, e.g. {"std": 0.1}.
        seed: If given, the weights are drawn from `torch.manual_seed(seed)` and the global
            RNG is left as it was.

    Returns:
        The model; it maps (B, in_features) to (B, out_features).

    Raises:
        InputError: If an argument is out of range or a name is unknown.
    """
    check_int("in_features", in_features, 1)
    check_int("out_features", out_features, 1)
    check_int("depth", depth, 1)
    check_int("width", width, 1)
    if not 0.0 <= check_number("dropout", dropout) < 1.0:
        raise InputError(f"dropout must be in [0, 1), got {dropout!r}")
    if not isinstance(residual, bool):
        raise InputError(f"residual must be a bool, got {residual!r}")
    act_options = check_options_dict("activation_options", activation_options)
    init_opts = check_options_dict("init_options", init_options)
    check_layer_choices(activation, act_options, init, init_opts, norm)

    with seeded(seed):
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for i in range(1, depth):
            fc = nn.Linear(in_features if i == 1 else width, width)
            hidden = _hidden(fc, norm, activation, act_options, dropout)
            if residual and i > 1:
                layers[f"block{i}"] = Residual(nn.Sequential(OrderedDict(hidden)))
            else:
                layers.update((f"{kind}{i}", module) for kind, module in hidden)
        layers[f"fc{depth}"] = nn.Linear(in_features if depth == 1 else width, out_features)
        model = nn.Sequential(layers)
        initialize(model, init, bias_init=bias_init, **init_opts)
    return model
