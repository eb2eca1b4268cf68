"""Measurements the experiments share: back-propagated errors and activation spreads.

These are one forward/backward pass on a fixed batch, read directly with autograd (the
obvious reference computation): the lab measures networks at initialisation as well as
after `gs.fit`, where `gs.watch` would need a training step.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn


def linear_layers(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The model's Linear layers in forward order (the order `named_modules` gives)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]


def preactivation_grad_norms(
    model: nn.Module, x: Tensor, y: Tensor, loss_fn: Callable[[Tensor, Tensor], Tensor]
) -> np.ndarray:
    """||dL/dz_l||_F of every Linear layer's output z_l on one batch, input to output.

    z_l = W_l h_{l-1} + b_l; dL/dz_l is the error back-propagated to layer l, the quantity
    whose shrinking with depth is the vanishing gradient (Hochreiter 1991). The model's
    parameter gradients are left as they were; the train/eval mode is the caller's.
    """
    outputs: list[Tensor] = []

    def keep(_module: nn.Module, _inputs: tuple[Tensor, ...], output: Tensor) -> None:
        output.retain_grad()
        outputs.append(output)

    handles = [m.register_forward_hook(keep) for _, m in linear_layers(model)]
    saved = [p.grad for p in model.parameters()]
    try:
        loss_fn(model(x), y).backward()
    finally:
        for handle in handles:
            handle.remove()
        for p, grad in zip(model.parameters(), saved, strict=True):
            p.grad = grad
    return np.array([float(o.grad.norm()) for o in outputs])  # (L,)


def first_last_ratio(norms: np.ndarray) -> float:
    """||dL/dz_1|| / ||dL/dz_L||: below 1 the error shrinks on its way to the input."""
    return float(norms[0] / norms[-1]) if norms[-1] > 0 else float("nan")


@torch.no_grad()
def output_stds(model: nn.Module, x: Tensor, kind: type[nn.Module]) -> np.ndarray:
    """Standard deviation over the batch and units of every `kind` module's output, in order.

    With kind=nn.Linear these are the pre-activations z_l; with an activation class, the
    post-activations h_l (Glorot & Bengio 2010, fig. 6, plot the latter).
    """
    stds: list[float] = []

    def keep(_module: nn.Module, _inputs: tuple[Tensor, ...], output: Tensor) -> None:
        stds.append(float(output.float().std()))

    handles = [m.register_forward_hook(keep) for m in model.modules() if isinstance(m, kind)]
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    return np.array(stds)
