"""Activation statistics: `act/mean`, `act/std`, `act/saturated`, `act/dead`, `act/zero_frac`,
`act/drift` and `act/grad_norm` (the back-propagated error at each measured output).

Measured on the steps that log activations, in training forward passes only (autograd on,
module in train mode), at:
- every activation module and pre-activation layer (`telemetry.layers.watched_modules`), by
  forward hooks installed for that step and removed before the optimizer step, so that a
  module without hooks takes torch's fast call path on the other steps;
- every activation written as a function call (`F.relu`, `torch.sigmoid`, `x.tanh()`, ...:
  `telemetry.functional`), named after the layer whose output it transforms ("fc1.relu";
  "relu" before any layer). Calls made inside an activation module (the `F.gelu` of
  nn.GELU, the `torch.tanh` of Hugging Face's `NewGELUActivation`) belong to that module.
So F.relu and nn.ReLU give the same statistics for the same network. A module or function
called several times in one step (micro-batches, a block reused, a cell applied over time)
has its calls combined into one set of statistics per name.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gradsight.telemetry.functional import ACTIVATION_FUNCTIONS, FunctionTap
from gradsight.telemetry.layers import WatchedModule
from gradsight.telemetry.recorder import Recorder
from gradsight.telemetry.stats import HISTOGRAM_BINS, ActivationStats, reduce_ops, reduce_output


class Activations:
    """Forward hooks on watched modules and handlers for functional activations.

    Args:
        recorder: The watch's recorder.
        model: The watched model (its train mode gates functional calls).
        modules: The modules whose outputs are measured.
        tap: The watch's function tap (functional activations register there).
        grads: Also measure the gradient norm at each output.
        histograms: Also count outputs into fixed bins.
        warn: Called as `warn(key, message)` once per key.
    """

    def __init__(
        self,
        recorder: Recorder,
        model: nn.Module,
        modules: list[WatchedModule],
        tap: FunctionTap,
        grads: bool,
        histograms: bool,
        warn: Callable[[str, str], None],
    ) -> None:
        self.recorder, self.model, self.modules = recorder, model, modules
        self.grads, self.histograms, self.warn = grads, histograms, warn
        self.tap = tap
        self.functional_names: dict[str, str] = {}  # name -> kind, as they are seen
        self._handles: list[Any] = []
        self._unit_dim = -1  # of the last pre-activation layer of this forward pass
        self._last_layer = ""
        self._inside_activation = 0
        self._stats: dict[str, ActivationStats] = {}
        self._output_grads: dict[str, list[float]] = defaultdict(list)
        self._previous_unit_mean: dict[str, np.ndarray] = {}
        self._enter_hook = recorder.hook(self._enter_act)

    # ---- hooks -----------------------------------------------------------------------------

    def arm(self) -> None:
        """Install the forward hooks and the functional handlers for this step."""
        if self._handles:
            return
        for watched in self.modules:
            hook = self.recorder.hook(
                partial(self._on_output, watched.name, watched.kind, watched.unit_dim)
            )
            if watched.unit_dim is None:  # an activation module: its inner calls are its own
                self._handles.append(watched.module.register_forward_pre_hook(self._enter_hook))
                self._handles.append(watched.module.register_forward_hook(hook, always_call=True))
            else:
                self._handles.append(watched.module.register_forward_hook(hook))
        for function in ACTIVATION_FUNCTIONS:
            self.tap.handlers[function] = self._on_function

    def disarm(self) -> None:
        """Remove the hooks and handlers."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for function in ACTIVATION_FUNCTIONS:
            self.tap.handlers.pop(function, None)
        self._inside_activation = 0

    def start_forward(self) -> None:
        """A forward pass begins: activations take their units from layers of this pass."""
        self._unit_dim = -1
        self._last_layer = ""
        self._inside_activation = 0

    def _enter_act(self, module: nn.Module, args: Any) -> None:
        self._inside_activation += 1

    def _on_output(self, name: str, kind: str, unit_dim: int | None, module, args, out) -> None:
        if unit_dim is None:
            self._inside_activation = max(self._inside_activation - 1, 0)
        if not (torch.is_grad_enabled() and module.training):
            return  # evaluation: not a training step
        if not isinstance(out, Tensor):
            self.warn(name, f"gradsight.watch: skipping {name!r}: its output is not a tensor")
            return
        if unit_dim is not None:
            self._unit_dim = unit_dim  # activations after this layer share its unit dimension
            self._last_layer = name
        self._measure(name, kind, out)

    def _on_function(self, function: Callable, args: tuple, kwargs: dict, out: Any) -> bool:
        if self._inside_activation or not isinstance(out, Tensor):
            return False
        if not (torch.is_grad_enabled() and self.model.training):
            return False
        function_name, kind = ACTIVATION_FUNCTIONS[function]
        name = f"{self._last_layer}.{function_name}" if self._last_layer else function_name
        self.functional_names.setdefault(name, kind)
        self._measure(name, kind, out)
        return True

    def _measure(self, name: str, kind: str, out: Tensor) -> None:
        reductions = reduce_output(out, kind, self._unit_dim, self.histograms)
        stats = self._stats.setdefault(name, ActivationStats(kind))
        count = out.numel() * self.recorder.world  # equal shards per process
        self.recorder.send(
            reductions,
            lambda step, values: stats.add(values, count, self.histograms),
            reduce_ops(kind, self.histograms),
        )
        if self.grads and out.requires_grad:
            out.register_hook(self.recorder.hook(partial(self.on_output_grad, name)))

    def on_output_grad(self, name: str, grad: Tensor) -> None:
        """Queue |dL/d output|^2 of `name` (calls of one step add up)."""
        # Squared, so processes add up: with a mean loss over W equal shards, the gradient at
        # a shard's outputs is 1/W of the local one, so the global square is sum / W^2.
        square = torch.linalg.vector_norm(grad.detach()).square().reshape(1)
        scale = 1.0 / self.recorder.world**2
        self.recorder.send(
            [square],
            lambda step, values: self._output_grads[name].append(scale * values[0][0]),
            ["sum"],
        )

    # ---- host ------------------------------------------------------------------------------

    def on_host(self, step: int) -> None:
        """Log the statistics accumulated over the step's calls."""
        history = self.recorder.history
        for name, stats in self._stats.items():
            if not stats.calls:
                continue
            summary = stats.summarize(self._previous_unit_mean.get(name))
            self._previous_unit_mean[name] = stats.unit_mean
            history.log_rows(step, list(summary), [name] * len(summary), list(summary.values()))
            if stats.histogram is not None:
                fractions = (stats.histogram / max(stats.histogram.sum(), 1)).tolist()
                bins = [f"act/hist/{i:02d}" for i in range(HISTOGRAM_BINS)]
                history.log_rows(step, bins, [name] * HISTOGRAM_BINS, fractions)
        for name, norms in self._output_grads.items():
            history.log(step, "act/grad_norm", math.sqrt(sum(norms)), name)
        self._stats = {}
        self._output_grads = defaultdict(list)

    @property
    def pending(self) -> bool:
        """Whether statistics wait for the host."""
        return bool(self._stats) or bool(self._output_grads)
