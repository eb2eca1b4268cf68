"""Gradients over time in recurrent networks: does the error reach early time steps?

- gradsight's RNNs pass each hidden state h_t through a `HiddenStateTap`: the norm of
  dL/dh_t is logged as `act/grad_norm` of layer `hidden_tap[t]`.
- torch's nn.RNN / nn.LSTM / nn.GRU run the recurrence in one fused call, so their hidden
  states cannot be hooked; the gradient reaching each time step of their input sequence,
  dL/dx_t = W_ih^T dL/dz_t, carries the back-propagated recurrent error (up to the constant
  W_ih), and is logged as `time/grad_input` of layer `NAME[t]`; the gradient at each step of
  their output sequence as `time/grad_output` of `NAME[t]`. With a loss on the last step
  only, |dL/dx_t| decays as t goes back when gradients vanish through time (Bengio et al.
  1994); with a loss at every step (language models) each step gets a direct share and the
  ratio cannot show it. The input gradient exists only when the input requires grad (it
  comes from an embedding or another layer), not for raw data fed straight in.
- What the recurrence itself carries, whatever the loss: `time/memory` of layer `NAME[t]`,
  |d(sum of the last step's output)/dx_t|, the influence of input step t on the last output
  through the recurrence (for a bidirectional module, its forward direction). Measured by
  running the module once more on a detached copy of its input (same weights, same initial
  state, the RNG state restored afterwards), on the logged steps only: one more forward and
  backward pass of that module, which neither the loss nor the weights' gradients see. A
  vanilla tanh RNN's influence falls geometrically with distance (Bengio et al. 1994).
"""

from __future__ import annotations

import math
from collections import defaultdict
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gradsight.telemetry.activations import Activations
from gradsight.telemetry.layers import hidden_taps, recurrent_modules
from gradsight.telemetry.recorder import Recorder


def _time_norms(grad: Tensor, time_dim: int) -> Tensor:
    """Squared norms of a (T, B, F) / (B, T, F) gradient per time step: (T,)."""
    grad = grad.detach()
    if grad.dim() < 2:
        return grad.float().square().reshape(1)
    others = [d for d in range(grad.dim()) if d != time_dim]
    return grad.float().square().sum(others)


def memory_probe(module: nn.RNNBase, sequence: Tensor, hx: Any, time_dim: int) -> Tensor:
    """Squared norms (T,) of d(sum of the last step's output)/dx_t, on a detached copy."""
    x = sequence.detach().requires_grad_(True)
    if hx is not None:
        hx = tuple(h.detach() for h in hx) if isinstance(hx, tuple) else hx.detach()
    devices = [x.device.index or 0] if x.is_cuda else []
    with torch.enable_grad(), torch.random.fork_rng(devices=devices):
        output, _ = module(x, hx)
        last = output.select(time_dim, -1)
        if module.bidirectional:
            last = last[..., : last.shape[-1] // 2]  # the forward direction
        (grad,) = torch.autograd.grad(last.sum(), x)
    return _time_norms(grad, time_dim)


class Temporal:
    """Per-time-step gradient norms of gradsight hidden taps and torch RNN modules.

    Args:
        recorder: The watch's recorder.
        model: The watched model: its `HiddenStateTap`s and torch RNN modules are measured.
        activations: The activation quantity (the taps' norms join its `act/grad_norm`).
        warn: Called as `warn(key, message)` once per key.
    """

    def __init__(
        self, recorder: Recorder, model: nn.Module, activations: Activations, warn
    ) -> None:
        self.recorder = recorder
        self.taps, self.rnns = hidden_taps(model), recurrent_modules(model)
        self.activations, self.warn = activations, warn
        self.without_input_grad: set[str] = set()
        self._handles: list[Any] = []
        self._tap_calls: dict[str, int] = defaultdict(int)
        self._squares: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
        self._probing = False  # the memory probe's own call of the module

    def arm(self) -> None:
        """Install forward hooks on the taps and the RNN modules."""
        if self._handles:
            return
        hook = self.recorder.hook
        for name, tap in self.taps:
            self._handles.append(
                tap.register_forward_hook(hook(partial(self._on_hidden_state, name)))
            )
        for name, rnn in self.rnns:
            self._handles.append(rnn.register_forward_hook(hook(partial(self._on_rnn, name))))

    def disarm(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def start_forward(self) -> None:
        """Time steps count from 0 in each forward pass."""
        self._tap_calls.clear()

    def _on_hidden_state(self, name: str, module, args, out: Tensor) -> None:
        t = self._tap_calls[name]
        self._tap_calls[name] += 1
        if self.activations.grads and torch.is_grad_enabled() and out.requires_grad:
            self.activations.hook_output_grad(out, f"{name}[{t}]")

    def _on_rnn(self, name: str, module: nn.RNNBase, args, out) -> None:
        if self._probing or not (torch.is_grad_enabled() and module.training):
            return
        sequence = args[0] if args else None
        output = out[0] if isinstance(out, tuple) else out
        if not isinstance(sequence, Tensor) or not isinstance(output, Tensor):
            self.warn(f"{name}:packed", f"gradsight.watch: {name!r}: packed sequences skipped")
            return
        time_dim = 1 if module.batch_first and sequence.dim() == 3 else 0
        if sequence.requires_grad:
            sequence.register_hook(
                self.recorder.hook(partial(self._on_grad, name, "time/grad_input", time_dim))
            )
        else:
            self.without_input_grad.add(name)
        if output.requires_grad:
            output.register_hook(
                self.recorder.hook(partial(self._on_grad, name, "time/grad_output", time_dim))
            )
        self._probing = True
        try:
            squares = memory_probe(module, sequence, args[1] if len(args) > 1 else None, time_dim)
        finally:
            self._probing = False
        self._send_squares(name, "time/memory", squares)

    def _on_grad(self, name: str, metric: str, time_dim: int, grad: Tensor) -> None:
        self._send_squares(name, metric, _time_norms(grad, time_dim))

    def _send_squares(self, name: str, metric: str, squares: Tensor) -> None:
        scale = 1.0 / self.recorder.world**2  # see Activations.on_output_grad
        self.recorder.send(
            [squares],
            lambda step, values: self._squares[(metric, name)].append(scale * values[0]),
            ["sum"],
        )

    def on_host(self, step: int) -> None:
        """Log sqrt of the summed squares per time step (calls of the step combined)."""
        history = self.recorder.history
        for (metric, name), parts in self._squares.items():
            lengths = {len(p) for p in parts}
            if len(lengths) != 1:  # calls over sequences of different lengths: the first
                parts = [p for p in parts if len(p) == len(parts[0])]
            total = np.sum(parts, axis=0)
            layers = [f"{name}[{t}]" for t in range(len(total))]
            history.log_rows(step, [metric] * len(total), layers, [math.sqrt(v) for v in total])
        self._squares = defaultdict(list)

    @property
    def pending(self) -> bool:
        """Whether norms wait for the host."""
        return bool(self._squares)
