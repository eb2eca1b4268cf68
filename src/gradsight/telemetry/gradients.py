"""Gradient statistics per layer: `grad/norm`, `grad/max_abs`, `grad/norm_global`.

Read at one of two moments:
- "step" (the default): in the optimizer's step pre-hook, so they are the gradients the
  optimizer uses (after accumulation, after GradScaler's unscaling, after any clipping). One
  `torch._foreach_norm` kernel reads every gradient.
- "backward": as soon as the backward pass has accumulated each gradient
  (`Tensor.register_post_accumulate_grad_hook`), in the last backward pass before the step
  (the one `is_final()` accepts: the last micro-batch of gradient accumulation), so they are
  the gradients *before* clipping: what the loop computed, not what clipping let through.
  A gradient not accumulated in that pass is read at the step. With a loss scale (a
  GradScaler), the norms are divided by the scale in force.

Per-layer norms are combined on the host as sqrt(sum of squares). Each step's host values
are only checked (the global norm's finiteness) and held back; they become rows in bulk when
the History is read or flushed (`History.add_row_source`), or at once when it has sinks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from itertools import repeat
from operator import is_not

import numpy as np
import torch
from torch import Tensor

from gradsight.telemetry.layers import ParameterLayout
from gradsight.telemetry.recorder import Recorder, due
from gradsight.telemetry.stats import layer_maxima, layer_norms


def _dense(grad: Tensor) -> Tensor:
    # A sparse gradient (nn.Embedding(sparse=True)) holds only the rows used: their values.
    return grad.coalesce().values() if grad.is_sparse else grad


class GradientNorms:
    """Per-layer gradient norms every `every` steps, largest elements every `max_every`.

    Args:
        recorder: The watch's recorder.
        layout: The model's parameters by layer.
        every: Norms every N steps (0 = never).
        max_every: Largest magnitudes every N steps (0 = never).
        on_nonfinite: Called as `on_nonfinite(step, parameter_name)` the first time a logged
            global norm is not finite.
        is_final: For reads after the backward pass (`read_after_backward`): whether the
            backward pass running now is the last one before the optimizer step (None:
            every pass is, the last one before the step counting).
        loss_scale: Returns the loss scale the gradients carry (None when they carry none).
    """

    def __init__(
        self,
        recorder: Recorder,
        layout: ParameterLayout,
        every: int,
        max_every: int,
        on_nonfinite: Callable[[int, str], None] | None = None,
        is_final: Callable[[], bool] | None = None,
        loss_scale: Callable[[], float | None] | None = None,
    ) -> None:
        self.recorder, self.layout = recorder, layout
        self.every, self.max_every = every, max_every
        self.on_nonfinite = on_nonfinite
        self.is_final, self.loss_scale = is_final, loss_scale
        # Reductions of this step not yet queued: (parameter indices, tensors).
        self._reads: list[tuple[list[int], list[Tensor]]] = []
        # Reductions made right after the backward pass, {parameter index: (norm[, min, max])},
        # and the step they belong to.
        self._early: dict[int, tuple[Tensor, ...]] = {}
        self._early_step = -1
        # The usual read, every parameter's gradient present, and its host arithmetic: the
        # parameters of one layer are consecutive (`parameter_layout`), so per-layer sums of
        # squares are sums over slices starting at `_layer_starts`.
        self._all = list(range(len(layout.params)))
        contiguous = layout.layer_of == sorted(layout.layer_of)
        self._layer_starts = (
            np.searchsorted(layout.layer_of, np.arange(len(layout.layers)))
            if contiguous and len(set(layout.layer_of)) == len(layout.layers)
            else None
        )
        self._held: list[tuple[int, list[int], list[np.ndarray]]] = []
        recorder.history.add_row_source(self.drain)

    def read_after_backward(self) -> list[torch.utils.hooks.RemovableHandle]:
        """Reduce each gradient as soon as the backward pass has accumulated it (before any
        clipping); returns the hook handles."""
        return [
            param.register_post_accumulate_grad_hook(partial(self._on_accumulated, index))
            for index, param in enumerate(self.layout.params)
            if param.requires_grad
        ]

    def _on_accumulated(self, index: int, param: Tensor) -> None:
        step = self.recorder.step
        if not due(self.every, step) or (self.is_final is not None and not self.is_final()):
            return
        if step != self._early_step:  # a step that never reached the optimizer leaves nothing
            self._early, self._early_step = {}, step
        grad = _dense(param.grad.detach())
        # A later pass of the same step (accumulation) replaces this read: the last one counts.
        if due(self.max_every, step):
            self._early[index] = (torch.linalg.vector_norm(grad), *grad.aminmax())
        else:
            self._early[index] = (torch.linalg.vector_norm(grad),)

    def read(self, only: set[int] | None = None) -> None:
        """Reduce the gradients present now (of the parameters whose id is in `only`) on the
        device, unless read already in this step; `send` queues them."""
        if not due(self.every, self.recorder.step):
            return
        if self._early:
            self._take_early(only)
        params = self.layout.params
        if only is None and not self._reads:  # the usual case: one read per step
            grads = [p.grad for p in params]
            present = self._all
            if not all(map(is_not, grads, repeat(None))):  # some parameter has no gradient
                present = [i for i, g in enumerate(grads) if g is not None]
                grads = [grads[i] for i in present]
        else:
            read = {i for indices, _ in self._reads for i in indices}
            present = [
                i
                for i, p in enumerate(params)
                if p.grad is not None and i not in read and (only is None or id(p) in only)
            ]
            grads = [params[i].grad for i in present]
        if not present:
            return
        with torch.no_grad():  # a gradient made with create_graph=True records nothing here
            if self.layout.sparse:
                grads = [_dense(g) for g in grads]
            tensors = [torch.stack(torch._foreach_norm(grads))]  # (P,): one kernel for all
            if due(self.max_every, self.recorder.step):
                # On the slower schedule: torch's CPU inf-norm costs ~15 2-norms; aminmax (min
                # and max in one pass) is the cheapest way to the largest magnitude.
                low, high = zip(*(g.aminmax() for g in grads), strict=True)
                tensors += [torch.stack(low), torch.stack(high)]
        self._reads.append((present, tensors))

    def _take_early(self, only: set[int] | None) -> None:
        params = self.layout.params
        indices = sorted(i for i in self._early if only is None or id(params[i]) in only)
        if not indices:
            return
        reads = [self._early.pop(i) for i in indices]
        tensors = [torch.stack(parts) for parts in zip(*reads, strict=True)]
        scale = self.loss_scale() if self.loss_scale is not None else None
        if scale is not None:
            tensors = [t / scale for t in tensors]
        self._reads.append((indices, tensors))

    def send(self) -> None:
        """Queue the step's reductions for the host transfer."""
        reads, self._reads = self._reads, []
        if not reads:
            return
        if len(reads) == 1:  # one optimizer per step: nothing to concatenate (no copy)
            present, tensors = reads[0]
        else:
            present = [i for indices, _ in reads for i in indices]
            tensors = [torch.cat(parts) for parts in zip(*(t for _, t in reads), strict=True)]
        self.recorder.send(tensors, partial(self._log, present))

    def _log(self, present: list[int], step: int, values: list[np.ndarray]) -> None:
        norms = values[0]
        self._held.append((step, present, values))
        if self.on_nonfinite is not None and not math.isfinite(float(norms @ norms)):
            layout = self.layout
            param = next(
                layout.names[i] for i, v in zip(present, norms, strict=True) if not math.isfinite(v)
            )
            self.on_nonfinite(step, param)
        if self.recorder.history.sinks:
            self.drain()  # sinks take rows as the steps come

    def drain(self) -> None:
        """Log the rows of the held steps: `grad/norm` and `grad/norm_global`, in bulk for
        the steps that read every gradient, and `grad/max_abs`."""
        held, self._held = self._held, []
        in_bulk = self._layer_starts is not None
        whole = [(step, v[0]) for step, present, v in held if in_bulk and present is self._all]
        if whole:
            self._log_whole([step for step, _ in whole], np.stack([v for _, v in whole]))
        for step, present, values in held:
            if not (in_bulk and present is self._all):
                self._log_norms(step, present, values[0])
            if len(values) == 3:
                self._log_largest(step, present, values)

    def _log_whole(self, steps: list[int], norms: np.ndarray) -> None:
        """Steps that read every gradient: norms (S, P) summed in squares per layer."""
        layers = self.layout.layers
        squares = norms * norms
        per_layer = np.sqrt(np.add.reduceat(squares, self._layer_starts, axis=1))  # (S, L)
        history = self.recorder.history
        count = len(steps) * len(layers)
        history.log_steps(
            np.repeat(steps, len(layers)).tolist(),
            ["grad/norm"] * count,
            layers * len(steps),
            per_layer.ravel().tolist(),
        )
        global_norms = np.sqrt(squares.sum(axis=1)).tolist()
        history.log_steps(steps, ["grad/norm_global"] * len(steps), [""] * len(steps), global_norms)

    def _log_norms(self, step: int, present: list[int], norms: np.ndarray) -> None:
        layout, history = self.layout, self.recorder.history
        owners = [layout.layer_of[i] for i in present]
        per_layer = layer_norms(norms, owners, len(layout.layers))
        count = len(per_layer)
        history.log_rows(step, ["grad/norm"] * count, layout.layers, per_layer.tolist())
        history.log(step, "grad/norm_global", math.sqrt(float(norms @ norms)))

    def _log_largest(self, step: int, present: list[int], values: list[np.ndarray]) -> None:
        layout = self.layout
        owners = [layout.layer_of[i] for i in present]
        largest = layer_maxima(np.maximum(values[2], -values[1]), owners, len(layout.layers))
        kept = [i for i, v in enumerate(largest) if not np.isnan(v)]
        self.recorder.history.log_rows(
            step,
            ["grad/max_abs"] * len(kept),
            [layout.layers[i] for i in kept],
            [largest[i] for i in kept],
        )
