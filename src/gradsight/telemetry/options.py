"""The options of a watch, validated once (see `gradsight.telemetry.watch.watch`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from torch import Tensor, nn

from gradsight.errors import InputError
from gradsight.telemetry.history import History
from gradsight.telemetry.run_dir import RunDir
from gradsight.telemetry.sink import named_sink

SCHEDULES = ("every", "updates_every", "activations_every")


@dataclass(frozen=True)
class WatchOptions:
    """What to measure, how often, and where to write it; `watch` documents each field."""

    every: int = 1
    updates_every: int = 10
    activations_every: int = 10
    activation_grads: bool = True
    histograms: bool = False
    check_nonfinite: bool = True
    on_nonfinite: Literal["warn", "raise", "stop"] = "warn"
    run_dir: str | Path | None = None
    flush_every: int = 100
    curvature_every: int = 0
    curvature_batch: tuple[Tensor, Tensor] | None = None
    curvature_loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None
    curvature_trace: bool = False
    tensorboard_dir: str | Path | None = None
    sinks: tuple = ()
    read_gradients: Literal["auto", "step", "backward"] = "auto"
    history: History | None = None

    def __post_init__(self) -> None:
        for name, value in self.schedules.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"{name} must be an int >= 0 (0 = never), got {value!r}")
        if self.flush_every < 1:
            raise InputError(f"flush_every must be >= 1, got {self.flush_every}")
        if self.on_nonfinite not in ("warn", "raise", "stop"):
            raise InputError(f"on_nonfinite must be warn, raise or stop, got {self.on_nonfinite!r}")
        if self.read_gradients not in ("auto", "step", "backward"):
            raise InputError(
                f"read_gradients must be auto, step or backward, got {self.read_gradients!r}"
            )
        if self.history is not None and self.run_dir is not None:
            raise InputError("give run_dir or history, not both")
        for sink in self.sinks:
            if not callable(getattr(sink, "write", None)) or not callable(
                getattr(sink, "close", None)
            ):
                raise TypeError(f"a sink needs write() and close() methods, got {sink!r}")
        if self.curvature_every and (
            self.curvature_batch is None or self.curvature_loss_fn is None
        ):
            raise InputError("curvature_every needs curvature_batch and curvature_loss_fn")

    def open_history(self, model: nn.Module, rank: int) -> tuple[RunDir | None, History]:
        """The run directory (rank 0 only: one writer) and the History rows go to, with the
        sinks attached (rank 0 only): `sinks`, and TensorBoard's when `tensorboard_dir` is set."""
        run = None
        if self.run_dir is not None and rank == 0:
            config = {"model": type(model).__name__, "watch": self.schedules}
            run = RunDir(self.run_dir, config)
        history = self.history
        if history is None:
            history = History(run.metrics_dir if run else None)
        if self.tensorboard_dir is not None and rank == 0:
            history.sinks.append(named_sink("tensorboard", self.tensorboard_dir, model))
        if rank == 0:
            history.sinks.extend(self.sinks)
        return run, history

    @property
    def schedules(self) -> dict[str, int]:
        """`every`, `updates_every` and `activations_every` by name."""
        return {name: getattr(self, name) for name in SCHEDULES}
