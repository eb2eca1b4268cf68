"""Weight initialisation by name, applied by one function that walks the model."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from gradsight.checks import (
    check_choice,
    check_int,
    check_number,
    check_options,
    check_positive,
    keyword_names,
)
from gradsight.errors import InputError


def _fan_in(weight: Tensor) -> int:
    """Inputs per output unit: in_features, or in_channels * kernel elements for a conv."""
    return weight.shape[1] * math.prod(weight.shape[2:])


def _default(weight: Tensor) -> None:
    """Leaves torch's own initialisation as it is."""


def _normal(weight: Tensor, std: float = 0.01) -> None:
    nn.init.normal_(weight, 0.0, check_positive("std", std))


def _uniform(weight: Tensor, a: float = 0.05) -> None:
    a = check_positive("a", a)
    nn.init.uniform_(weight, -a, a)


def _xavier_uniform(weight: Tensor, gain: float = 1.0) -> None:
    nn.init.xavier_uniform_(weight, gain=check_positive("gain", gain))


def _xavier_normal(weight: Tensor, gain: float = 1.0) -> None:
    nn.init.xavier_normal_(weight, gain=check_positive("gain", gain))


def _he_uniform(weight: Tensor) -> None:
    nn.init.kaiming_uniform_(weight, mode="fan_in", nonlinearity="relu")


def _he_normal(weight: Tensor) -> None:
    nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu")


def _lecun_normal(weight: Tensor) -> None:
    nn.init.normal_(weight, 0.0, 1.0 / math.sqrt(_fan_in(weight)))


def _orthogonal(weight: Tensor, gain: float = 1.0) -> None:
    nn.init.orthogonal_(weight, gain=check_positive("gain", gain))


INITS: dict[str, Callable[..., None]] = {
    "default": _default,
    "normal": _normal,
    "uniform": _uniform,
    "xavier_uniform": _xavier_uniform,
    "xavier_normal": _xavier_normal,
    "he_uniform": _he_uniform,
    "he_normal": _he_normal,
    "lecun_normal": _lecun_normal,
    "orthogonal": _orthogonal,
}

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)
_CELLS = (nn.RNNCell, nn.LSTMCell, nn.GRUCell, nn.RNNBase)


def _gates(cell: nn.Module) -> int:
    """Number of gate blocks stacked in a recurrent weight: 4 for LSTM, 3 for GRU, else 1."""
    if isinstance(cell, nn.RNNBase):
        return {"LSTM": 4, "GRU": 3}.get(cell.mode, 1)
    return 4 if isinstance(cell, nn.LSTMCell) else 3 if isinstance(cell, nn.GRUCell) else 1


def init_options(scheme: str) -> tuple[str, ...]:
    """The options a scheme takes, e.g. ("std",) for "normal"."""
    fn = INITS[check_choice("init", scheme, INITS)]
    return keyword_names(fn)[1:]  # the first argument is the weight itself


def _parameters(module: nn.Module) -> Iterator[tuple[str, Tensor, int]]:
    """(role, tensor, gates) of what `initialize` sets; role is "weight", "bias" or "bias_hh"."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            yield "weight", m.weight, 1
            if m.bias is not None:
                yield "bias", m.bias, 1
        elif isinstance(m, _CELLS):
            gates = _gates(m)
            for name, p in m.named_parameters(recurse=False):
                role = name.split("_")[0]  # weight_ih, weight_hh, weight_hr, bias_ih, bias_hh
                if name.startswith("weight_hr"):  # LSTM projection: one matrix, no gates
                    yield role, p, 1
                else:
                    yield ("bias_hh" if name.startswith("bias_hh") else role), p, gates


@torch.no_grad()
def initialize(module: nn.Module, scheme: str, *, bias_init: float = 0.0, **options: Any) -> None:
    """Initialises every Linear, Conv1d/2d and recurrent-cell weight of `module` in place.

    With n_in and n_out the fan-in and fan-out of a layer (for a conv, channels times kernel
    elements), the schemes draw each weight W as:

    - "default": torch's own initialisation is left as it is, biases included.
    - "normal": W ~ N(0, std^2), std = 0.01.
    - "uniform": W ~ U(-a, a), a = 0.05.
    - "xavier_uniform": W ~ U(-b, b), b = gain * sqrt(6 / (n_in + n_out)), and
      "xavier_normal": W ~ N(0, gain^2 * 2 / (n_in + n_out)); both keep the variance of
      activations and gradients constant through linear/tanh layers (Glorot & Bengio 2010,
      "Understanding the difficulty of training deep feedforward neural networks").
    - "he_uniform": W ~ U(-b, b), b = sqrt(6 / n_in), and "he_normal": W ~ N(0, 2 / n_in);
      the factor 2 makes up for ReLU zeroing half of its inputs (He et al. 2015, "Delving
      deep into rectifiers").
    - "lecun_normal": W ~ N(0, 1 / n_in) (LeCun et al. 1998, "Efficient BackProp").
    - "orthogonal": W = gain * Q, Q with orthonormal rows or columns (Saxe et al. 2014).

    Recurrent cells stack the matrices of their gates (4 for LSTM, 3 for GRU); each gate's
    block is initialised on its own, so its fans are those of one gate. Biases are set to
    `bias_init` for every scheme but "default"; in cells that hold two biases (b_ih and b_hh)
    b_hh is set to 0 so the effective bias is `bias_init`. Norm layers get weight 1, bias 0.

    Args:
        module: The model; its submodules are walked recursively.
        scheme: A key of `INITS`.
        bias_init: Value of every bias (not allowed to differ from 0 with "default").
        **options: Options of the scheme: `std` (normal), `a` (uniform), `gain` (xavier_*,
            orthogonal).

    Raises:
        InputError: If the scheme or an option is unknown, or a value is out of range.
    """
    check_options("init", scheme, options, init_options(scheme))
    bias_init = check_number("bias_init", bias_init)
    if scheme == "default":
        if bias_init != 0.0:
            raise InputError(f"bias_init has no effect with init 'default', got {bias_init!r}")
        return
    fn = INITS[scheme]
    # A dry run on a meta tensor checks the option values before any weight changes; it
    # draws nothing from the RNG.
    fn(torch.empty(2, 2, device="meta"), **options)
    for role, tensor, gates in _parameters(module):
        if role == "weight":
            for block in tensor.chunk(gates, dim=0):  # views, so the parameter is set in place
                fn(block, **options)
        else:
            tensor.fill_(bias_init if role == "bias" else 0.0)
    for m in module.modules():
        if isinstance(m, _NORMS) and getattr(m, "weight", None) is not None:
            m.weight.fill_(1.0)
            m.bias.fill_(0.0)


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Runs the block under `torch.manual_seed(seed)` and restores the global CPU RNG after.

    With `seed=None` the block uses (and advances) the global RNG as usual.
    """
    if seed is None:
        yield
        return
    check_int("seed", seed, 0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
