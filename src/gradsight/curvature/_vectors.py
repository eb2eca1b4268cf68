"""Flat parameter vectors: the space the Hessian acts on, and random probes in it.

Curvature tools see the trainable parameters theta_1..theta_P of a model as one flat vector
of size n = sum_i numel(theta_i), in the order of `model.parameters()`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gradsight.errors import InputError


def trainable(model: nn.Module) -> list[nn.Parameter]:
    """The parameters with `requires_grad`, in `model.parameters()` order."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise InputError(f"{type(model).__name__} has no trainable parameters")
    return params


def flatten(tensors: Sequence[Tensor]) -> Tensor:
    """Concatenate tensors into one flat vector, (n,)."""
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(vector: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    """Split a flat vector (n,) into views shaped like `like` (e.g. the model's parameters)."""
    sizes = [t.numel() for t in like]
    if vector.numel() != sum(sizes):
        raise InputError(f"vector has {vector.numel()} elements, the parameters {sum(sizes)}")
    return [part.view_as(t) for part, t in zip(vector.split(sizes), like, strict=True)]


def generator(seed: int | torch.Generator, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch.Generator on `device`: `seed` itself if it is one, else a new one seeded with it."""
    if isinstance(seed, torch.Generator):
        return seed
    return torch.Generator(device=device).manual_seed(int(seed))


def rademacher(
    shape: tuple[int, ...], gen: torch.Generator, dtype: torch.dtype, device: torch.device
) -> Tensor:
    """Independent +-1 entries with probability 1/2 each (Hutchinson 1989's probe vectors)."""
    bits = torch.randint(0, 2, shape, generator=gen, device=gen.device)
    return (2 * bits - 1).to(device=device, dtype=dtype)


def gaussian(
    shape: tuple[int, ...], gen: torch.Generator, dtype: torch.dtype, device: torch.device
) -> Tensor:
    """Independent N(0, 1) entries."""
    return torch.randn(shape, generator=gen, device=gen.device, dtype=dtype).to(device)
