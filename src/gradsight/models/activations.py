"""Activation functions by name, always as fresh `torch.nn` modules so forward hooks see them."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from gradsight.checks import check_choice, check_options, keyword_names


class CenteredSigmoid(nn.Module):
    """sigmoid(x) - 1/2 = tanh(x / 2) / 2: the sigmoid's derivative (at most 1/4) with outputs
    in (-1/2, 1/2), centred at zero. Against `nn.Sigmoid` it changes only the outputs' mean,
    against `nn.Tanh` only their scale (LeCun et al. 1998, "Efficient BackProp", sec. 4.4)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(x) - 0.5


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,  # 1 / (1 + e^-x); its derivative is at most 1/4
    "centered_sigmoid": CenteredSigmoid,  # sigmoid(x) - 1/2: same derivative, zero-centred
    "tanh": nn.Tanh,  # derivative at most 1, zero-centred
    "relu": nn.ReLU,  # max(0, x) (Nair & Hinton 2010)
    "leaky_relu": nn.LeakyReLU,  # max(x, a x), a = negative_slope = 0.01 (Maas et al. 2013)
    "prelu": nn.PReLU,  # leaky ReLU with a learned slope, init 0.25 (He et al. 2015)
    "rrelu": nn.RReLU,  # slope drawn from U(lower, upper) while training (Xu et al. 2015)
    "elu": nn.ELU,  # x if x > 0 else alpha (e^x - 1), alpha = 1 (Clevert et al. 2016)
    "gelu": nn.GELU,  # x Phi(x) (Hendrycks & Gimpel 2016)
    "silu": nn.SiLU,  # x sigmoid(x) (Elfwing et al. 2018)
    "identity": nn.Identity,
}

# Constructor arguments that are not options of the function. In-place activations are left
# out on purpose: they overwrite the tensors that hooks and residual sums still need.
_NOT_OPTIONS = ("self", "inplace", "device", "dtype")


def activation_options(name: str) -> tuple[str, ...]:
    """The options an activation takes, e.g. ("negative_slope",) for "leaky_relu"."""
    cls = ACTIVATIONS[check_choice("activation", name, ACTIVATIONS)]
    return keyword_names(cls.__init__, skip=_NOT_OPTIONS)


def make_activation(name: str, **options: Any) -> nn.Module:
    """A new activation module, one per layer.

    Args:
        name: A key of `ACTIVATIONS`.
        **options: Constructor options of that module, e.g. `negative_slope=0.2` for
            "leaky_relu", `alpha=0.5` for "elu", `num_parameters=128` for "prelu".

    Returns:
        A fresh `nn.Module` instance.

    Raises:
        ValueError: If the name or an option is unknown.
    """
    check_options("activation", name, options, activation_options(name))
    return ACTIVATIONS[name](**options)
