"""What a remedy returns (`Treatment`), how it refuses (`NotApplicable`), and training settings.

A remedy is a plain function `remedy(model, settings, task, seed=0) -> Treatment`: it never
changes its arguments; it returns a deep copy of the model (changed or not), a new settings
dict (keyword arguments of `gs.fit`) and a task (the same object unless the data changed).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Protocol

from torch import nn

from gradsight.data.task import Task
from gradsight.train.optimizers import OPTIMIZERS

# Optimizers whose per-parameter step sizes already adapt to the gradients' scale.
ADAPTIVE_OPTIMIZERS = ("adam", "adamw", "rmsprop", "adagrad", "lamb")


class NotApplicable(Exception):
    """A remedy does not apply to this model, settings or task; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Treatment:
    """A remedy applied: what to train next, and what the user should change.

    Attributes:
        names: The remedies applied, in order (one name, or several for a combination).
        model: A deep copy of the model, changed by the remedy where it is a model change.
        settings: Keyword arguments of `gs.fit` (optimizer, lr, momentum, clip_norm, ...).
        task: The task to train on (a standardised copy for `normalize_inputs`).
        changes: One line per remedy saying what to change in the user's own code.
    """

    names: tuple[str, ...]
    model: nn.Module
    settings: dict[str, Any]
    task: Task
    changes: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        """The remedies joined by "+", e.g. "relu_activation+he_init"."""
        return "+".join(self.names)


class RemedyFunction(Protocol):
    """`remedy(model, settings, task, seed=0) -> Treatment`; raises `NotApplicable`."""

    def __call__(
        self, model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0
    ) -> Treatment: ...


def treated(
    name: str,
    model: nn.Module,
    settings: dict[str, Any],
    task: Task,
    change: str,
) -> Treatment:
    """A one-remedy `Treatment` (the model is the caller's already-copied model)."""
    return Treatment((name,), model, dict(settings), task, (change,))


def resolved_lr(settings: dict[str, Any]) -> float:
    """The learning rate `gs.fit` would use: settings["lr"], else the optimizer's default."""
    lr = settings.get("lr")
    if lr is not None:
        return float(lr)
    optimizer = settings.get("optimizer", "sgd")
    if optimizer not in OPTIMIZERS:
        raise NotApplicable(
            f"unknown optimizer {optimizer!r}: its default learning rate is unknown"
        )
    return OPTIMIZERS[optimizer].default_lr


def copy_model(model: nn.Module) -> nn.Module:
    """A deep copy: parameters, buffers and submodules are new objects."""
    return copy.deepcopy(model)
