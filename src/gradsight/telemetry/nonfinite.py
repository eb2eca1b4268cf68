"""Finding where a NaN or Inf came from: the first module whose output is non-finite."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from gradsight.errors import InputError
from gradsight.telemetry.history import History

OnNonFinite = Literal["warn", "raise", "stop"]


@dataclass(frozen=True)
class NonFinite:
    """The first non-finite value a watch saw.

    Attributes:
        step: The step.
        source: "gradient" or "loss".
        module: The first module, in the order modules finish their forward pass, whose
            output was non-finite (so the innermost module where it appeared).
        param: The first parameter (in registration order) whose gradient was non-finite.
    """

    step: int
    source: str
    module: str | None
    param: str | None

    def __str__(self) -> str:
        where = [f"output of {self.module!r}"] if self.module else []
        where += [f"gradient of {self.param!r}"] if self.param else []
        found = f": first in the {' and the '.join(where)}" if where else ""
        return f"non-finite {self.source} at step {self.step}{found}"


def first_nonfinite_module(
    model: nn.Module, modules: list[tuple[str, nn.Module]], inputs: tuple[tuple, dict] | None
) -> str | None:
    """Replay the step's forward pass and name the first module whose output is non-finite.

    Called only once a non-finite gradient has been seen, before the optimizer applies it, so
    the weights are those that produced it; a healthy step pays nothing for this. The replay
    runs without autograd, restores the RNG state (dropout) and every buffer (batch-norm
    running statistics) afterwards, so training is unchanged. A NaN that does not come back
    on replay (a different dropout mask, an earlier micro-batch) leaves the module unnamed.

    Every module is checked, as it finishes (inner modules before the blocks that hold
    them), on its output tensor or the tensors of a tuple, list or dict it returns (Hugging
    Face outputs).

    Args:
        model: The watched model.
        modules: `(name, module)` pairs to check.
        inputs: The `(args, kwargs)` of the model's last forward call.
    """
    if inputs is None:
        return None
    found: list[str] = []

    def check(name: str, module: nn.Module, args: Any, out: Any) -> None:
        if not found and any(not bool(torch.isfinite(t).all()) for t in _tensors(out)):
            found.append(name)

    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    handles = [
        module.register_forward_hook(lambda m, a, o, name=name: check(name, m, a, o))
        for name, module in modules
    ]
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.is_cuda})
    args, kwargs = inputs
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            model(*args, **kwargs)
    except Exception:
        pass
    finally:
        for handle in handles:
            handle.remove()
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                if name in buffers:
                    buffer.copy_(buffers[name])
    return found[0] if found else None


def _tensors(out: Any) -> list[Tensor]:
    """The floating-point tensors of a module's output (a tensor, tuple, list or dict)."""
    if isinstance(out, Tensor):
        return [out] if out.is_floating_point() or out.is_complex() else []
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in _tensors(item)]
    return []


class NonFiniteMonitor:
    """Reports the first non-finite loss or gradient of a run, as `on_nonfinite` says.

    Args:
        history: Where the event is logged (`nonfinite/module`, `nonfinite/grad`).
        on_nonfinite: "warn", "raise" (FloatingPointError) or "stop" (sets `stopped`).
        replay: Called as `replay(step)` for a non-finite gradient: the name of the first
            module whose output is non-finite, when the step can still be replayed.
        enabled: Check at all.
    """

    def __init__(
        self,
        history: History,
        on_nonfinite: OnNonFinite,
        replay: Callable[[int], str | None],
        enabled: bool = True,
    ) -> None:
        if on_nonfinite not in ("warn", "raise", "stop"):
            raise InputError(f"on_nonfinite must be warn, raise or stop, got {on_nonfinite!r}")
        self.history, self.on_nonfinite, self.replay = history, on_nonfinite, replay
        self.enabled = enabled
        self.event: NonFinite | None = None
        self.stopped = False

    def gradient(self, step: int, param: str) -> None:
        """A logged global gradient norm was not finite; `param` is the first such one."""
        if self.enabled and self.event is None:
            self._report(NonFinite(step, "gradient", self.replay(step), param))

    def value(self, name: str, step: int, number: float) -> None:
        """A logged value reached the host: a non-finite loss is reported."""
        if name == "loss" and self.enabled and self.event is None and not math.isfinite(number):
            self._report(NonFinite(step, "loss", None, None))

    def _report(self, event: NonFinite) -> None:
        self.event = event
        self.history.log(event.step, "nonfinite/module", 1.0, event.module or "")
        if event.param:
            self.history.log(event.step, "nonfinite/grad", 1.0, event.param)
        if self.on_nonfinite == "raise":
            raise FloatingPointError(f"gradsight.watch: {event}")
        if self.on_nonfinite == "stop":
            self.stopped = True  # the caller asked to be told by this flag, not by a warning
            return
        warnings.warn(f"gradsight.watch: {event}", RuntimeWarning, stacklevel=6)
