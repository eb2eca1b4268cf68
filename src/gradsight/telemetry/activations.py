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
from torch.nn.modules import module as module_hooks

from gradsight.telemetry.activation_summary import HostCalls, PreviousMeans, summarize
from gradsight.telemetry.functional import ACTIVATION_FUNCTIONS, FunctionTap
from gradsight.telemetry.layers import WatchedModule
from gradsight.telemetry.recorder import Recorder
from gradsight.telemetry.stats import OutputReductions, reduce_output


class Activations:
    """Hooks on the watched modules' outputs and handlers for functional activations.

    The reductions of a step's calls, and the gradient norms at those outputs, are queued for
    the host in one group when the step's transfer runs (`queue`): per call, a few kernels
    and a list append, nothing more.

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
        self._watched = {id(watched.module): watched for watched in modules}
        # Functional activations are reported while the tap runs (logged steps), when armed.
        for function in ACTIVATION_FUNCTIONS:
            tap.handlers[function] = self._on_function
        self._handles: list[Any] = []
        self._unit_dim = -1  # of the last pre-activation layer of this forward pass
        self._last_layer = ""
        self._inside_activation = 0
        # Measured, not yet queued: (step, name, kind, values, reductions), (step, name, norm).
        self._calls: list[tuple[int, str, str, int, OutputReductions]] = []
        self._grad_norms: list[tuple[int, str, Tensor]] = []
        recorder.transfer.producers.append(self.queue)
        # On the host, until `on_host` logs them.
        self._host = HostCalls()
        self._output_grads: dict[str, list[float]] = defaultdict(list)
        self._previous = PreviousMeans()

    # ---- hooks -----------------------------------------------------------------------------

    def arm(self) -> None:
        """Install the output hooks for this step.

        Two global module hooks, dispatching on the module, cost far less to install and remove
        every logged step than one hook per watched module. Under torch.compile each watched
        module gets its own hooks instead, each kept out of Dynamo's tracing.
        """
        if self._handles:
            return
        if self.recorder.compiled:
            enter = self.recorder.hook(self._on_any_input)
            leave = self.recorder.hook(self._on_any_output)
            for watched in self.modules:
                if watched.unit_dim is None:  # an activation module: its inner calls are its own
                    self._handles.append(watched.module.register_forward_pre_hook(enter))
                self._handles.append(watched.module.register_forward_hook(leave, always_call=True))
        else:
            self._handles = [
                module_hooks.register_module_forward_pre_hook(self._on_any_input),
                module_hooks.register_module_forward_hook(self._on_any_output, always_call=True),
            ]

    def disarm(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._inside_activation = 0

    def start_forward(self) -> None:
        """A forward pass begins: activations take their units from layers of this pass."""
        self._unit_dim = -1
        self._last_layer = ""
        self._inside_activation = 0

    def _on_any_input(self, module: nn.Module, args: Any) -> None:
        watched = self._watched.get(id(module))
        if watched is not None and watched.unit_dim is None:
            self._inside_activation += 1

    def _on_any_output(self, module: nn.Module, args: Any, out: Any) -> None:
        watched = self._watched.get(id(module))
        if watched is None:
            return
        if watched.unit_dim is None:
            self._inside_activation = max(self._inside_activation - 1, 0)
        if out is None or not (module.training and torch.is_grad_enabled()):
            return  # evaluation, or a forward pass that raised
        if not isinstance(out, Tensor):
            name = watched.name
            self.warn(name, f"gradsight.watch: skipping {name!r}: its output is not a tensor")
            return
        if watched.unit_dim is not None:
            self._unit_dim = watched.unit_dim  # activations after this layer share its units
            self._last_layer = watched.name
        self._measure(watched.name, watched.kind, out)

    def _on_function(self, function: Callable, args: tuple, kwargs: dict, out: Any) -> bool:
        if not self._handles or self._inside_activation or not isinstance(out, Tensor):
            return False
        if not (torch.is_grad_enabled() and self.model.training):
            return False
        function_name, kind = ACTIVATION_FUNCTIONS[function]
        name = f"{self._last_layer}.{function_name}" if self._last_layer else function_name
        self.functional_names.setdefault(name, kind)
        self._measure(name, kind, out)
        return True

    def _measure(self, name: str, kind: str, out: Tensor) -> None:
        count = out.numel()
        if count == 0:
            return  # an empty output: nothing to measure
        reductions = reduce_output(out, kind, self._unit_dim, self.histograms)
        self._calls.append((self.recorder.step, name, kind, count, reductions))
        if self.grads and out.requires_grad:
            self.hook_output_grad(out, name)

    def hook_output_grad(self, out: Tensor, name: str) -> None:
        """Note |dL/d out| under `name` when the backward pass reaches `out`.

        A pre-hook on the node that made `out` costs about half of `Tensor.register_hook`;
        it sees the gradients of all the node's outputs, of which `out` is `output_nr`.
        """
        node = out.grad_fn
        if node is None:  # a leaf
            out.register_hook(self.recorder.hook(partial(self.on_output_grad, name)))
            return
        hook = partial(self._on_node_grads, name, out.output_nr)
        node.register_prehook(self.recorder.hook(hook) if self.recorder.compiled else hook)

    def _on_node_grads(self, name: str, index: int, grads: tuple) -> None:
        if grads[index] is not None:
            self.on_output_grad(name, grads[index])

    def on_output_grad(self, name: str, grad: Tensor) -> None:
        """Note |dL/d output| of `name` (calls of one step add up in squares)."""
        self._grad_norms.append((self.recorder.step, name, torch.linalg.vector_norm(grad.detach())))

    # ---- transfer and host -----------------------------------------------------------------

    def queue(self) -> None:
        """Queue what was measured since the last transfer, one group per step."""
        calls, self._calls = self._calls, []
        grads, self._grad_norms = self._grad_norms, []
        for step in dict.fromkeys([c[0] for c in calls] + [g[0] for g in grads]):
            self._queue_step(
                step, [c[1:] for c in calls if c[0] == step], [g[1:] for g in grads if g[0] == step]
            )

    def _queue_step(self, step: int, calls: list, grads: list) -> None:
        """One step's calls as six tensors: sums of squares (C,), counts, per-unit sums,
        per-unit maxima (ReLU family), histograms and the output gradients' squares (G,).

        All are sums across processes but the per-unit maxima. At the outputs, with a mean
        loss over W equal shards, the gradient at a shard's outputs is 1/W of the local one,
        so the global square is the sum over processes / W^2.
        """
        reductions = [r for *_, r in calls]
        empty = (reductions[0].norm if calls else grads[0][1]).new_zeros(0)
        tensors = [
            torch.stack([r.norm for r in reductions]).square() if calls else empty,
            _stack([r.count for r in reductions if r.count is not None], empty),
            _cat([r.unit_sum for r in reductions], empty),
            _cat([r.unit_max for r in reductions if r.unit_max is not None], empty),
            _cat([r.histogram for r in reductions if r.histogram is not None], empty),
            torch.stack([norm for _, norm in grads]).square() if grads else empty,
        ]
        ops = ["sum", "sum", "sum", "max", "sum", "sum"]
        described = [(name, kind, count, r.count is not None) for name, kind, count, r in calls]
        sizes = [r.unit_sum.numel() for r in reductions]
        names = [name for name, _ in grads]
        consume = partial(self._on_transfer, described, sizes, names)
        self.recorder.transfer.send(step, tensors, consume, ops)

    def _on_transfer(self, calls, sizes, grad_names, step: int, values: list) -> None:
        """Keep a step's host values until `on_host`."""
        squares, counts, units, maxima, histograms, grad_squares = values
        host, world = self._host, self.recorder.world
        counted = np.full(len(calls), np.nan)
        counted[[i for i, call in enumerate(calls) if call[3]]] = counts
        host.names += [name for name, *_ in calls]
        host.kinds += [kind for _, kind, *_ in calls]
        host.counts += [count * world for _, _, count, _ in calls]
        host.squares.append(squares)
        host.counted.append(counted)
        host.units.append(units)
        host.sizes += sizes
        host.maxima.append(maxima)
        if len(histograms):
            host.histograms += np.split(histograms, len(calls))
        scale = 1.0 / world**2
        for name, square in zip(grad_names, grad_squares, strict=True):
            self._output_grads[name].append(scale * float(square))

    def on_host(self, step: int) -> None:
        """Log the statistics of the calls since the last `on_host`, combined per name."""
        history = self.recorder.history
        if self._host:
            for names, layers, values in summarize(self._host, self._previous):
                history.log_rows(step, names, layers, values)
        if self._output_grads:
            layers = list(self._output_grads)
            norms = [math.sqrt(sum(squares)) for squares in self._output_grads.values()]
            history.log_rows(step, ["act/grad_norm"] * len(layers), layers, norms)
        self._host = HostCalls()
        self._output_grads = defaultdict(list)

    @property
    def pending(self) -> bool:
        """Whether statistics wait for the host."""
        return bool(self._host) or bool(self._output_grads)


def _stack(tensors: list[Tensor], empty: Tensor) -> Tensor:
    return torch.stack(tensors) if tensors else empty


def _cat(tensors: list[Tensor], empty: Tensor) -> Tensor:
    return torch.cat(tensors) if tensors else empty
