"""Model builders (mlp, cnn, resnet, rnn) and the activation, init and norm registries.

Every builder validates its arguments, names its layers readably (fc1, act1, block2, head,
...), and takes `seed` to draw its weights without touching the global RNG.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from gradsight.checks import check_choice
from gradsight.models.activations import ACTIVATIONS, activation_options, make_activation
from gradsight.models.cnn import cnn, conv_input_shape, resnet
from gradsight.models.init import INITS, init_options, initialize, seeded
from gradsight.models.layers import Reshape, Residual
from gradsight.models.mlp import mlp
from gradsight.models.norm import NORMS, make_norm
from gradsight.models.rnn import CELLS, ElmanCell, HiddenStateTap, RecurrentNet, rnn

MODELS: dict[str, Callable[..., nn.Module]] = {"mlp": mlp, "cnn": cnn, "resnet": resnet, "rnn": rnn}


def build(kind: str, **kwargs: Any) -> nn.Module:
    """Builds a model by name, e.g. `build("mlp", in_features=64, out_features=10)`.

    Raises:
        ValueError: If `kind` is not a key of `MODELS`, or an argument is bad.
    """
    return MODELS[check_choice("model", kind, MODELS)](**kwargs)


__all__ = [
    "ACTIVATIONS",
    "CELLS",
    "INITS",
    "MODELS",
    "NORMS",
    "ElmanCell",
    "HiddenStateTap",
    "RecurrentNet",
    "Reshape",
    "Residual",
    "activation_options",
    "build",
    "cnn",
    "conv_input_shape",
    "init_options",
    "initialize",
    "make_activation",
    "make_norm",
    "mlp",
    "resnet",
    "rnn",
    "seeded",
]
