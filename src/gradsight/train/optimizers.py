"""Optimizers by name. torch.optim supplies every rule it has; `register_optimizer` adds the rest.

The names follow the theory's update rules (g is the gradient, w the weights):

- `sgd`:      w -= lr * g                                  (torch.optim.SGD)
- `momentum`: m = mu * m + g;  w -= lr * m                 (SGD, momentum mu, default 0.9)
- `nag`:      Nesterov's look-ahead, in torch's reformulation w -= lr * (g + mu * m)
              (SGD with nesterov=True; Sutskever et al. 2013)
- `adagrad`:  s += g^2;  w -= lr * g / (sqrt(s) + eps)     (Duchi et al. 2011)
- `rmsprop`:  s = a * s + (1 - a) * g^2;  w -= lr * g / (sqrt(s) + eps)   (Tieleman & Hinton 2012)
- `adam`:     bias-corrected moments m / (1 - b1^t), v / (1 - b2^t)       (Kingma & Ba 2015)
- `adamw`:    Adam with decoupled weight decay             (Loshchilov & Hutter 2019)
- `lamb`:     Adam's step scaled per layer by ||w|| / ||step|| (You et al. 2019; `gs.optim.Lamb`)
- `adam_no_bias_correction`: Adam without the 1 / (1 - b^t) factors (`gs.optim`), for the lab

`weight_decay` goes to the optimizer as torch defines it: for sgd/momentum/nag/adagrad/rmsprop
/adam it is added to the gradient (w.d. * w, so for plain SGD it equals an L2 penalty of
(w.d. / 2) * ||w||^2, but for Adam it is then rescaled by the adaptive denominator); for adamw
it is decoupled: w -= lr * w.d. * w, outside the adaptive rescaling. An L2 *loss penalty*
is a separate option of `fit` (`l2`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gradsight.errors import InputError
from gradsight.optim.adam_no_bias_correction import AdamNoBiasCorrection
from gradsight.optim.lamb import Lamb

OptimizerFactory = Callable[..., torch.optim.Optimizer]


@dataclass(frozen=True)
class OptimizerSpec:
    """How to build one named optimizer.

    Attributes:
        factory: Called as `factory(params, lr=..., weight_decay=..., **options)`.
        default_lr: The learning rate used when the caller gives none.
        momentum: "none" if the rule has no momentum argument, "optional" if it takes one
            (default 0), "required" if the name means momentum (default 0.9 when 0 is given).
        nesterov: Whether the name means Nesterov momentum.
    """

    factory: OptimizerFactory
    default_lr: float
    momentum: str = "none"
    nesterov: bool = False


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec(torch.optim.SGD, 0.01, momentum="optional"),
    "momentum": OptimizerSpec(torch.optim.SGD, 0.01, momentum="required"),
    "nag": OptimizerSpec(torch.optim.SGD, 0.01, momentum="required", nesterov=True),
    "adagrad": OptimizerSpec(torch.optim.Adagrad, 0.01),
    "rmsprop": OptimizerSpec(torch.optim.RMSprop, 1e-3, momentum="optional"),
    "adam": OptimizerSpec(torch.optim.Adam, 1e-3),
    "adamw": OptimizerSpec(torch.optim.AdamW, 1e-3),
    "lamb": OptimizerSpec(Lamb, 1e-3),
    "adam_no_bias_correction": OptimizerSpec(AdamNoBiasCorrection, 1e-3),
}
DEFAULT_MOMENTUM = 0.9


def register_optimizer(
    name: str, factory: OptimizerFactory, default_lr: float, *, momentum: str = "none"
) -> None:
    """Make an optimizer torch.optim lacks available by name (in fit, configs and the CLI)."""
    if momentum not in ("none", "optional", "required"):
        raise InputError(f"momentum must be 'none', 'optional' or 'required', got {momentum!r}")
    OPTIMIZERS[name] = OptimizerSpec(factory, default_lr, momentum=momentum)


def build_optimizer(
    name: str,
    params: Iterable[nn.Parameter],
    lr: float | None = None,
    *,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    **options: Any,
) -> torch.optim.Optimizer:
    """Build the optimizer called `name` (see the module docstring for the rules).

    Args:
        name: One of `OPTIMIZERS`.
        params: Parameters (or parameter groups) to optimise.
        lr: Learning rate; None takes the rule's default.
        momentum: Momentum coefficient mu for the rules that have one.
        nesterov: Nesterov momentum for `sgd` (`nag` implies it).
        weight_decay: Passed to torch.optim (coupled for all but adamw, see module docstring).
        **options: Any other argument of the torch.optim class (betas, eps, alpha, ...).
    """
    if name not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    spec = OPTIMIZERS[name]
    lr = spec.default_lr if lr is None else lr
    if not math.isfinite(lr):
        raise InputError(f"lr must be finite, got {lr}")
    if not lr > 0:
        raise InputError(f"lr must be > 0, got {lr}")
    if not 0 <= momentum < 1:
        raise InputError(f"momentum must be in [0, 1), got {momentum}")
    if weight_decay < 0:
        raise InputError(f"weight_decay must be >= 0, got {weight_decay}")
    if spec.momentum == "none" and momentum:
        raise InputError(f"optimizer {name!r} takes no momentum (got {momentum})")
    if nesterov and name not in ("sgd", "nag"):
        raise InputError(f"nesterov applies to 'sgd' and 'nag', not {name!r}")
    if spec.momentum == "required":
        options["momentum"] = momentum or DEFAULT_MOMENTUM
    elif spec.momentum == "optional":
        options["momentum"] = momentum
    if spec.nesterov or nesterov:
        if not options["momentum"]:
            raise InputError("nesterov needs momentum > 0")
        options["nesterov"] = True
    try:
        return spec.factory(params, lr=lr, weight_decay=weight_decay, **options)
    except TypeError as error:  # an option the class does not take
        raise InputError(f"optimizer {name!r}: {error}") from None
