"""`watch`: per-layer gradients, updates and activations of any training loop, at little cost.

```python
with gs.watch(model, optimizer) as watch:
    for x, y in loader:
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(); loss.backward(); optimizer.step()
        watch.log(loss=loss)          # tensors are fine: no host sync here
history = watch.history
```

How it measures (the engineering rules of DESIGN.md):
- Gradients and updates are read in the optimizer's step pre/post hooks, so they are the
  gradients the optimizer uses (after accumulation; after GradScaler's unscaling, which runs
  before `optimizer.step`) and the real change of every weight, whatever the update rule.
  A step GradScaler skips (inf/NaN gradients) never calls the optimizer, so it is not counted.
- Activations are read by forward hooks on activation modules and on Linear/Conv layers
  (their outputs are the pre-activations), only in forward passes with autograd on (training,
  not evaluation). With gradient accumulation the micro-batches of one step are combined.
- Every statistic is reduced on the device; the values of a step are moved to the host in
  one transfer, at the end of the optimizer step. Steps that log nothing cost a hook call.
- Nothing here draws random numbers or changes a tensor: training is bit-identical with and
  without watching.

Step numbering: step t is the t-th optimizer step (from 0). `watch.log` called before or after
`optimizer.step()` attributes its values to the step in progress; the next step begins with
the next forward pass of the model.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from gradsight.telemetry.history import History
from gradsight.telemetry.layers import hidden_taps, parameter_layout, unwrap, watched_modules
from gradsight.telemetry.run_dir import RunDir
from gradsight.telemetry.stats import (
    HISTOGRAM_BINS,
    SUM,
    ActivationSums,
    activation_summary,
    activation_sums,
    layer_reduce,
)

OnNonFinite = Literal["warn", "raise", "stop"]


@dataclass(frozen=True)
class NonFinite:
    """The first non-finite value seen.

    Attributes:
        step: The step.
        source: "forward" (a module's output), "gradient" or "loss".
        module: The first watched module, in forward order, whose output was non-finite.
        param: The first parameter whose gradient was non-finite.
    """

    step: int
    source: str
    module: str | None
    param: str | None

    def __str__(self) -> str:
        where = [f"output of {self.module!r}"] if self.module else []
        where += [f"gradient of {self.param!r}"] if self.param else []
        return f"non-finite {self.source} at step {self.step}" + (
            f": first in the {' and the '.join(where)}" if where else ""
        )


class Watch:
    """Records per-layer statistics of a training loop into a `History`. Use `gs.watch`."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        every: int = 1,
        updates_every: int = 10,
        activations_every: int = 10,
        activation_grads: bool = True,
        histograms: bool = False,
        check_nonfinite: bool = True,
        on_nonfinite: OnNonFinite = "warn",
        run_dir: str | Path | None = None,
        flush_every: int = 100,
        history: History | None = None,
    ) -> None:
        for name, value in (
            ("every", every),
            ("updates_every", updates_every),
            ("activations_every", activations_every),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0 (0 = never), got {value!r}")
        if flush_every < 1:
            raise ValueError(f"flush_every must be >= 1, got {flush_every}")
        if on_nonfinite not in ("warn", "raise", "stop"):
            raise ValueError(
                f"on_nonfinite must be 'warn', 'raise' or 'stop', got {on_nonfinite!r}"
            )
        if history is not None and run_dir is not None:
            raise ValueError("give run_dir or history, not both")
        self.model = unwrap(model)
        self.optimizer = optimizer
        self.every, self.updates_every = every, updates_every
        self.activations_every = activations_every
        self.activation_grads, self.histograms = activation_grads, histograms
        self.check_nonfinite, self.on_nonfinite = check_nonfinite, on_nonfinite
        self.flush_every = flush_every
        settings = {
            "every": every,
            "updates_every": updates_every,
            "activations_every": activations_every,
            "activation_grads": activation_grads,
            "histograms": histograms,
        }
        self.run = (
            RunDir(run_dir, {"model": type(self.model).__name__, "watch": settings})
            if (run_dir is not None)
            else None
        )
        if history is None:
            history = History(self.run.metrics_dir if self.run else None)
        self.history = history
        self.layout = parameter_layout(self.model)
        self.nonfinite: NonFinite | None = None
        self.stopped = False  # set when on_nonfinite="stop" fires; loops should end
        self.latest: dict[str, float] = {}  # last host value of each logged user value
        self._step = 0
        self._step_done = False
        self._unit_dim = -1
        self._acts_now = self._check_now = False
        self._tap_calls: dict[str, int] = defaultdict(int)
        self._snapshot: list[Tensor] | None = None
        self._snapshot_taken = False
        self._previous_unit_mean: dict[str, Tensor] = {}
        self._warned: set[str] = set()
        self._user: list[tuple[int, str, str, Tensor | float]] = []  # (step, name, layer, value)
        self._reset_record()
        self._handles = self._install()
        self._closed = False

    # ---- hooks ---------------------------------------------------------------------------

    def _install(self) -> list[Any]:
        handles = [self.model.register_forward_pre_hook(self._on_forward_start)]
        for watched in watched_modules(self.model):
            hook = partial(self._on_output, watched.name, watched.kind, watched.unit_dim)
            handles.append(watched.module.register_forward_hook(hook))
        for name, tap in hidden_taps(self.model):
            handles.append(tap.register_forward_hook(partial(self._on_hidden_state, name)))
        if self.optimizer is not None:
            handles.append(self.optimizer.register_step_pre_hook(self._before_step))
            handles.append(self.optimizer.register_step_post_hook(self._after_step))
        return handles

    def _logs(self, every: int, step: int | None = None) -> bool:
        return every > 0 and (self._step if step is None else step) % every == 0

    def _on_forward_start(self, module: nn.Module, args: Any) -> None:
        if self._step_done:  # the first forward after an optimizer step starts the next step
            self._step += 1
            self._step_done = False
        self._unit_dim = -1
        self._tap_calls.clear()
        self._acts_now = self._logs(self.activations_every)
        self._check_now = self.check_nonfinite and self._logs(self.every)

    def _on_output(self, name: str, kind: str, unit_dim: int | None, module, args, out) -> None:
        if not (self._acts_now or self._check_now):
            return  # the cost of a step that logs nothing: this call
        if not (torch.is_grad_enabled() and module.training):
            return  # evaluation passes are not training
        if not isinstance(out, Tensor):
            self._warn_once(name, f"gradsight.watch: skipping {name!r}: its output is not a tensor")
            return
        if unit_dim is not None:
            self._unit_dim = unit_dim
        if self._acts_now:
            dim = self._unit_dim if unit_dim is None else unit_dim
            sums = activation_sums(out, kind, dim, self.histograms)
            if name in self._acts:
                self._acts[name].add(sums)
            else:
                self._acts[name] = sums
            if self._check_now:
                self._forward_sums.append((name, sums.totals[SUM]))
            if self.activation_grads and out.requires_grad:
                out.register_hook(partial(self._on_output_grad, name))
        else:
            # A sum is non-finite when any element is (or when it overflows, far past sanity).
            self._forward_sums.append((name, out.detach().sum()))

    def _on_output_grad(self, name: str, grad: Tensor) -> None:
        self._output_grads[name].append(torch.linalg.vector_norm(grad.detach().float()))

    def _on_hidden_state(self, name: str, module, args, out: Tensor) -> None:
        t = self._tap_calls[name]
        self._tap_calls[name] += 1
        logging = self._logs(self.activations_every) and self.activation_grads
        if logging and torch.is_grad_enabled() and out.requires_grad:
            out.register_hook(partial(self._on_output_grad, f"{name}[{t}]"))

    def _before_step(self, optimizer: Any = None, args: Any = None, kwargs: Any = None) -> None:
        if self._logs(self.every):
            self._record_gradients()
        if self._logs(self.updates_every):
            self._take_snapshot()

    def _take_snapshot(self) -> None:
        # foreach ops on .detach() views: on the leaf parameters themselves they are far slower.
        views = [p.detach() for p in self.layout.params]
        if self._snapshot is None:
            self._snapshot = [v.clone() for v in views]
        else:
            torch._foreach_copy_(self._snapshot, views)
        self._snapshot_taken = True

    def _after_step(self, optimizer: Any = None, args: Any = None, kwargs: Any = None) -> None:
        if self._snapshot_taken:
            self._record_updates()
        if self.optimizer is not None:
            for index, group in enumerate(self.optimizer.param_groups):
                layer = "" if index == 0 else f"group{index}"
                self._user.append((self._step, "lr", layer, group["lr"]))
        self._step_done = True
        if self._record_size() or (self._step + 1) % self.flush_every == 0:
            self._sync()
        if (self._step + 1) % self.flush_every == 0:
            self.history.flush()

    def step(self) -> None:
        """Mark the end of an optimizer step, for a watch made without an optimizer.

        Call it right after `optimizer.step()`: gradients are read then; updates are the
        change of the weights since the previous `step()` call.
        """
        if self.optimizer is not None:
            raise RuntimeError("this watch reads the optimizer's steps itself; do not call step()")
        if self._logs(self.every):
            self._record_gradients()
        self._after_step()  # records the update when a snapshot was taken at the last call
        if self._logs(self.updates_every, self._step + 1):
            self._take_snapshot()  # the weights before the next step's update

    # ---- measurements (device only) ------------------------------------------------------

    def _record_gradients(self) -> None:
        layout = self.layout
        present = [i for i, p in enumerate(layout.params) if p.grad is not None]
        if not present:
            return
        grads = [layout.params[i].grad.detach() for i in present]
        norms = torch.stack(torch._foreach_norm(grads)).float()  # (P,)
        count = len(layout.layers)
        if len(present) == len(layout.params):
            names, index, kept = layout.layers, layout.layer_index, None
        else:  # some parameters got no gradient this step: report only layers that did
            owners = [layout.layer_of[i] for i in present]
            index = torch.tensor(owners, device=norms.device)
            kept = sorted(set(owners))
            names = [layout.layers[i] for i in kept]
        per_layer = layer_reduce(norms, index, count, "norm")
        self._add("grad/norm", names, per_layer if kept is None else per_layer[kept])
        self._add("grad/norm_global", [""], norms.square().sum().sqrt().reshape(1))
        self._param_grad_norms = (norms, [layout.names[i] for i in present])
        if self._logs(self.updates_every):
            # The max-norm is on the slower schedule: torch's CPU inf-norm is ~15x a 2-norm;
            # min and max in one pass (aminmax) are far cheaper than abs().amax().
            low, high = zip(*(g.aminmax() for g in grads), strict=True)
            maxes = torch.maximum(torch.stack(high), -torch.stack(low)).float()  # (P,)
            per_layer = layer_reduce(maxes, index, count, "max")
            self._add("grad/max_abs", names, per_layer if kept is None else per_layer[kept])

    def _record_updates(self) -> None:
        views = [p.detach() for p in self.layout.params]
        deltas = torch._foreach_sub(views, self._snapshot)
        update = torch.stack(torch._foreach_norm(deltas)).float()
        weight = torch.stack(torch._foreach_norm(views)).float()
        count = len(self.layout.layers)
        update = layer_reduce(update, self.layout.layer_index, count, "norm")
        weight = layer_reduce(weight, self.layout.layer_index, count, "norm")
        self._add("weight/norm", self.layout.layers, weight)
        self._add("update/norm", self.layout.layers, update)
        self._add("update/ratio", self.layout.layers, update / weight.clamp_min(1e-30))
        self._snapshot_taken = False

    def _record_activations(self) -> None:
        for name, sums in self._acts.items():
            summary = activation_summary(sums, self._previous_unit_mean.get(name))
            self._previous_unit_mean[name] = sums.unit_sum / sums.unit_rows
            for stat, value in summary.items():
                self._add(stat, [name], value.reshape(1))
            if sums.histogram is not None:
                fractions = sums.histogram / sums.histogram.sum().clamp_min(1)
                self._tensors.append(fractions)
                self._names.extend(f"act/hist/{i:02d}" for i in range(HISTOGRAM_BINS))
                self._layers.extend([name] * HISTOGRAM_BINS)
        for name, norms in self._output_grads.items():
            self._add("act/grad_norm", [name], torch.stack(norms).square().sum().sqrt().reshape(1))

    def _add(self, stat: str, layers: list[str], values: Tensor) -> None:
        self._tensors.append(values)
        self._names.extend([stat] * len(layers))
        self._layers.extend(layers)

    # ---- user values, host sync, non-finite handling ----------------------------------------

    def log(self, **values: Tensor | float) -> None:
        """Record scalars (loss, metrics) for the current step; tensors stay on the device."""
        for name, value in values.items():
            if isinstance(value, Tensor):
                if value.numel() != 1:
                    raise ValueError(
                        f"watch.log: {name!r} must be a scalar, got shape {tuple(value.shape)}"
                    )
                value = value.detach().reshape(())
            elif not isinstance(value, (int, float)):
                raise ValueError(
                    f"watch.log: {name!r} must be a number or a tensor, got {type(value).__name__}"
                )
            self._user.append((self._step, name, "", value))
        if self.optimizer is None and len(self._user) >= self.flush_every * len(values):
            self._sync()

    def _record_size(self) -> int:
        return (
            len(self._tensors) + len(self._acts) + len(self._output_grads) + len(self._forward_sums)
        )

    def _reset_record(self) -> None:
        self._tensors: list[Tensor] = []
        self._names: list[str] = []
        self._layers: list[str] = []
        self._acts: dict[str, ActivationSums] = {}
        self._output_grads: dict[str, list[Tensor]] = defaultdict(list)
        self._forward_sums: list[tuple[str, Tensor]] = []
        self._param_grad_norms: tuple[Tensor, list[str]] | None = None

    def _sync(self) -> None:
        """Move the step's statistics and the pending user values to the host at once."""
        step = self._step
        self._record_activations()
        tensors = list(self._tensors)
        forward_names = [name for name, _ in self._forward_sums]
        if self._forward_sums:
            tensors.append(torch.stack([s for _, s in self._forward_sums]))
        param_names: list[str] = []
        if self._param_grad_norms is not None:
            tensors.append(self._param_grad_norms[0])
            param_names = self._param_grad_norms[1]
        user_tensors = [v.float() for *_, v in self._user if isinstance(v, Tensor)]
        if user_tensors:
            tensors.append(torch.stack(user_tensors))
        host: list[float] = []
        if tensors:
            device = tensors[0].device
            host = torch.cat([t.reshape(-1).to(device) for t in tensors]).tolist()  # the sync
        stats = len(self._names)
        self.history.log_rows(step, self._names, self._layers, host[:stats])
        cursor = stats
        forward = host[cursor : cursor + len(forward_names)]
        cursor += len(forward_names)
        grads = host[cursor : cursor + len(param_names)]
        cursor += len(param_names)
        user_values = iter(host[cursor:])
        losses = []
        for user_step, name, layer, value in self._user:
            number = next(user_values) if isinstance(value, Tensor) else float(value)
            self.history.log(user_step, name, number, layer)
            self.latest[name] = number
            if name == "loss":
                losses.append((user_step, number))
        self._user = []
        self._reset_record()
        if self.check_nonfinite and self.nonfinite is None:
            self._check_nonfinite(step, forward_names, forward, param_names, grads, losses)

    def _check_nonfinite(self, step, forward_names, forward, param_names, grads, losses) -> None:
        module = next(
            (n for n, v in zip(forward_names, forward, strict=True) if not math.isfinite(v)), None
        )
        param = next(
            (n for n, v in zip(param_names, grads, strict=True) if not math.isfinite(v)), None
        )
        bad_loss = next((s for s, v in losses if not math.isfinite(v)), None)
        if module is None and param is None and bad_loss is None:
            return
        source = "forward" if module else "gradient" if param else "loss"
        event = NonFinite(step if bad_loss is None else min(step, bad_loss), source, module, param)
        self.nonfinite = event
        self.history.log(event.step, "nonfinite/module", 1.0, module or "")
        if param:
            self.history.log(event.step, "nonfinite/grad", 1.0, param)
        if self.on_nonfinite == "raise":
            raise FloatingPointError(f"gradsight.watch: {event}")
        if self.on_nonfinite == "stop":
            self.stopped = True  # the caller asked to be told by this flag, not by a warning
            return
        warnings.warn(f"gradsight.watch: {event}", RuntimeWarning, stacklevel=3)

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    # ---- lifetime --------------------------------------------------------------------------

    def close(self, status: str = "finished") -> History:
        """Remove every hook, move what is pending to the History and flush it."""
        if self._closed:
            return self.history
        self._closed = True
        for handle in self._handles:
            handle.remove()
        self._handles = []
        try:
            if self._user or self._record_size():
                self._sync()
        finally:
            self.history.flush()
            if self.run is not None:
                self.run.finish(status)
        return self.history

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: Any, traceback: Any) -> None:
        status = (
            "finished"
            if kind is None
            else ("interrupted" if issubclass(kind, KeyboardInterrupt) else "failed")
        )
        self.close(status)


def watch(
    model: nn.Module, optimizer: torch.optim.Optimizer | None = None, **options: Any
) -> Watch:
    """Watch a training loop; see `Watch` for the options and the module docstring for usage.

    Args:
        model: The model (a DDP or torch.compile wrapper is unwrapped).
        optimizer: Its optimizer; without one, call `watch.step()` after each optimizer step.
        **options: every (gradient statistics every N steps, default 1), updates_every
            (weight and update norms, default 10), activations_every (activation statistics
            and output gradients, default 10), activation_grads, histograms, check_nonfinite,
            on_nonfinite ("warn" | "raise" | "stop"), run_dir, flush_every (steps, default 100).
    """
    return Watch(model, optimizer, **options)
