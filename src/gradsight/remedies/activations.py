"""Swap activation modules: sigmoid/tanh -> ReLU, LeakyReLU or ELU, in any container.

Only activation *modules* can be swapped; a model calling `torch.sigmoid` in its forward has
nothing to replace, and the remedy says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from gradsight.data.task import Task
from gradsight.remedies.base import NotApplicable, Treatment, copy_model, treated

# Saturating activations: their derivative tends to 0 for large |x| (sigmoid' <= 1/4).
SATURATING: tuple[type[nn.Module], ...] = (
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.Softsign,
    nn.LogSigmoid,
)


def swap_modules(
    model: nn.Module, old: tuple[type[nn.Module], ...], make: Callable[[], nn.Module]
) -> list[str]:
    """Replaces, in place, every submodule of a type in `old` by `make()`; returns their names.

    Walks `named_modules` and sets the new module on the parent with `setattr`, so it works
    for Sequential, ModuleList/ModuleDict and plain attributes alike. The root is not replaced.
    """
    targets = [name for name, m in model.named_modules() if name and isinstance(m, old)]
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, make())
    return targets


def _swap(
    name: str,
    new: type[nn.Module],
    old: tuple[type[nn.Module], ...],
    model: nn.Module,
    settings: dict[str, Any],
    task: Task,
    gs_name: str,
) -> Treatment:
    found = sorted({type(m).__name__ for m in model.modules() if isinstance(m, old)})
    if not found:
        kinds = ", ".join(t.__name__ for t in old)
        raise NotApplicable(
            f"the model has no {kinds} modules to replace (a functional call such as "
            "torch.sigmoid in forward cannot be swapped)"
        )
    changed = copy_model(model)
    swap_modules(changed, old, new)
    olds = " and ".join(f"nn.{kind}" for kind in found)
    change = (
        f"replace {olds} by nn.{new.__name__}; with gradsight's builders: "
        f'gs.models.mlp(..., activation="{gs_name}")'
    )
    return treated(name, changed, settings, task, change)


def relu_activation(
    model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0
) -> Treatment:
    """Sigmoid/tanh -> ReLU, whose derivative is 1 for active units (Nair & Hinton 2010)."""
    return _swap("relu_activation", nn.ReLU, SATURATING, model, settings, task, "relu")


def leaky_relu_activation(
    model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0
) -> Treatment:
    """Sigmoid/tanh/ReLU -> LeakyReLU(0.01): a slope for x < 0 keeps units alive (Maas 2013)."""
    return _swap(
        "leaky_relu_activation",
        nn.LeakyReLU,
        (*SATURATING, nn.ReLU),
        model,
        settings,
        task,
        "leaky_relu",
    )


def elu_activation(
    model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0
) -> Treatment:
    """Sigmoid/tanh/ReLU -> ELU: no dead zone, mean output nearer 0 (Clevert et al. 2016)."""
    return _swap("elu_activation", nn.ELU, (*SATURATING, nn.ReLU), model, settings, task, "elu")
