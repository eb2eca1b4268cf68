"""Callbacks: how other parts of gradsight (and users) hook into `fit` without changing it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from gradsight.data.task import Task
from gradsight.telemetry.history import History
from gradsight.telemetry.watch import Watch


@dataclass
class FitState:
    """What a callback sees.

    Attributes:
        model: The model being trained.
        optimizer: Its optimizer.
        task: The task.
        history: The run's History (callbacks may log to it).
        watch: The `gs.watch` recording the run (`watch.log(...)` adds values to a step).
        step: Index of the step just taken (0 for the first), or -1 before training.
        loss: The data loss of that step, a 0-d tensor on the device (no host sync).
        stop: Set to True to end training after this step.
        extra: Free space for callbacks to share results.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    task: Task
    history: History
    watch: Watch
    step: int = -1
    loss: Tensor | None = None
    stop: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Callback:
    """Base class with no-op hooks; override the ones you need."""

    def on_fit_start(self, state: FitState) -> None:
        """Before the first step."""

    def on_step_end(self, state: FitState) -> None:
        """After each optimizer step (and the schedule's step)."""

    def on_eval(self, state: FitState, metrics: dict[str, float]) -> None:
        """After each evaluation on the test split."""

    def on_fit_end(self, state: FitState) -> None:
        """After the last step, also when training ends early or fails."""
