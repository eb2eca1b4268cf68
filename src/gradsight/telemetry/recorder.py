"""What every quantity shares with its watch: the step in progress, the transfer, the History.

A quantity is one family of measurements (`gradients`, `updates`, `activations`,
`temporal`, `transformer`) in a module of its own. Those read during the forward and
backward passes implement `ForwardQuantity`: the watch arms them at the start of a forward
pass on the steps that log activations, disarms them before the optimizer step, and calls
`on_host` after each transfer, when their device reductions have reached the host.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Protocol

import torch
from torch import Tensor

from gradsight.telemetry.history import History
from gradsight.telemetry.transfer import Consumer, Transfer


def due(every: int, step: int) -> bool:
    """Whether a schedule of one log every `every` steps (0 = never) logs at `step`."""
    return every > 0 and step % every == 0


class Recorder:
    """The step in progress and where measurements go.

    Attributes:
        step: The optimizer step in progress (from 0).
        history: Where host values are logged.
        transfer: The queue of device values (see `telemetry.transfer`).
        compiled: The model runs under torch.compile (see `hook`).
    """

    def __init__(self, history: History, transfer: Transfer, compiled: bool = False) -> None:
        self.step = 0
        self.history = history
        self.transfer = transfer
        self.compiled = compiled
        self._warned: set[str] = set()

    def hook(self, fn: Callable) -> Callable:
        """`fn` as a hook: kept out of Dynamo's tracing when the model is compiled (no
        per-layer graph breaks or recompiles); as it is otherwise, where the wrapper would
        only cost time (a few microseconds a call)."""
        return torch.compiler.disable(fn) if self.compiled else fn

    def warn_once(self, key: str, message: str) -> None:
        """A RuntimeWarning, once per key (a module skipped, an input not measured)."""
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    @property
    def world(self) -> int:
        """Number of processes whose values are combined."""
        return self.transfer.world

    def send(self, tensors: list[Tensor], consume: Consumer, ops: list[str] | None = None) -> None:
        """Queue device tensors of the step in progress (see `Transfer.send`)."""
        self.transfer.send(self.step, tensors, consume, ops)


class ForwardQuantity(Protocol):
    """Statistics read by hooks during the forward and backward passes of logged steps."""

    def arm(self) -> None:
        """Install the hooks for this forward pass (once per step: later calls add nothing)."""

    def start_forward(self) -> None:
        """A training forward pass of the watched model begins (armed or not)."""

    def disarm(self) -> None:
        """Remove the hooks (before the optimizer step, at close)."""

    def on_host(self, step: int) -> None:
        """Log what the step's transfer brought to the host."""

    @property
    def pending(self) -> bool:
        """Whether values wait for `on_host`."""
