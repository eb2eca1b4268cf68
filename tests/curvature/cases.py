"""Tiny models with exact Hessians (torch.autograd.functional.hessian, float64)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

import gradsight as gs
from gradsight.curvature import flatten


class LSTMNet(nn.Module):
    """nn.LSTM (its own fused kernel, unlike LSTMCell) and a linear head on the last step."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(2, 3, batch_first=True)
        self.head = nn.Linear(3, 2)

    def forward(self, x: Tensor) -> Tensor:  # (B, T, 2) -> (B, 2)
        return self.head(self.lstm(x)[0][:, -1])


@dataclass
class Case:
    """A float64 model, one batch and a loss, small enough to form the Hessian."""

    model: nn.Module
    x: Tensor
    y: Tensor
    loss_fn: Callable[[Tensor, Tensor], Tensor]

    @property
    def batch(self) -> tuple[Tensor, Tensor]:
        return self.x, self.y


def make_case(name: str) -> Case:
    """Builds the named case; inputs and targets come from a seeded generator."""
    gen = torch.Generator().manual_seed(0)
    classes = torch.randint(0, 2, (16,), generator=gen)
    if name == "mlp_tanh":
        model = gs.models.mlp(3, 2, depth=3, width=4, activation="tanh", seed=0)
        x = torch.randn(16, 3, generator=gen)
    elif name in ("batchnorm_train", "batchnorm_eval"):
        model = gs.models.mlp(3, 2, depth=3, width=4, activation="tanh", norm="batch", seed=0)
        x = torch.randn(16, 3, generator=gen)
    elif name == "lstm_cell":
        model = gs.models.rnn(2, 3, 2, cell="lstm", seed=0)
        x = torch.randn(16, 5, 2, generator=gen)
    elif name == "nn_lstm":
        torch.manual_seed(0)
        model = LSTMNet()
        x = torch.randn(16, 5, 2, generator=gen)
    elif name == "mse_relu":
        model = gs.models.mlp(3, 2, depth=2, width=5, activation="relu", seed=0)
        x = torch.randn(16, 3, generator=gen)
        return Case(
            model.double(), x.double(), torch.randn(16, 2, generator=gen).double(), F.mse_loss
        )
    else:
        raise ValueError(name)
    model = model.double()
    model.train(name != "batchnorm_eval")
    return Case(model, x.double(), classes, F.cross_entropy)


CASES = ("mlp_tanh", "mse_relu", "batchnorm_train", "batchnorm_eval", "lstm_cell", "nn_lstm")


def exact_hessian(case: Case) -> Tensor:
    """The (n, n) Hessian of the loss over the flat trainable parameters (slow, obvious)."""
    model = case.model
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    shapes = [p.shape for _, p in named]
    sizes = [p.numel() for _, p in named]
    saved = {k: b.clone() for k, b in model.named_buffers()}

    def loss(flat: Tensor) -> Tensor:
        parts = [t.view(s) for t, s in zip(flat.split(sizes), shapes, strict=True)]
        state = {
            **{k: b.clone() for k, b in saved.items()},
            **dict(zip([n for n, _ in named], parts, strict=True)),
        }
        return case.loss_fn(functional_call(model, state, (case.x,)), case.y)

    return torch.autograd.functional.hessian(loss, flatten([p.detach() for _, p in named]))
