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
- Gradients are read in the optimizer's step pre-hook and updates in its post-hook, so they
  are what the optimizer uses (after gradient accumulation; after GradScaler's unscaling,
  which runs before `optimizer.step`) and the real change of every weight, whatever the rule.
  A step GradScaler skips (inf/NaN gradients) never calls the optimizer and is not counted.
- Activations are read by forward hooks on activation modules and on Linear/Conv layers
  (their outputs are the pre-activations), only in training forward passes (autograd on,
  module in train mode). The micro-batches of one step (accumulation) and the calls of a
  recurrent cell over time are combined.
- Every statistic is reduced on the device. A logged step moves its values to the host in
  one transfer, in the optimizer's pre-hook (the update norms of step t travel with step
  t + 1, or at close). Steps that log nothing cost the hook calls.
- Nothing here draws random numbers or changes a tensor: training is bit-identical with and
  without watching.
- Non-finite values: the global gradient norm of each logged step and every logged loss are
  checked on the host after the transfer. A non-finite gradient is caught before the
  optimizer applies it; the step's forward pass is then replayed to name the first module
  whose output is non-finite (see `nonfinite.first_nonfinite_module`).

- Under torch.distributed (a DDP model: watch its `.module`, or the wrapper, which is
  unwrapped): gradients and weights are the same on every process after DDP's all-reduce;
  activation statistics are sums (counts, sums, sums of squares) and maxima combined across
  processes before the transfer, so they describe the global batch (shards of equal size,
  as DistributedSampler makes them); logged losses are averaged. Rank 0 alone writes the
  run directory and TensorBoard.

Step numbering: step t is the t-th optimizer step (from 0). `watch.log` before or after
`optimizer.step()` attributes its values to the step in progress; the next step begins with
the next forward pass of the model.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from gradsight.telemetry.history import History
from gradsight.telemetry.layers import hidden_taps, parameter_layout, unwrap, watched_modules
from gradsight.telemetry.nonfinite import NonFinite, first_nonfinite_module
from gradsight.telemetry.run_dir import RunDir
from gradsight.telemetry.stats import (
    HISTOGRAM_BINS,
    ActivationStats,
    layer_maxima,
    layer_norms,
    reduce_ops,
    reduce_output,
)

OnNonFinite = Literal["warn", "raise", "stop"]
Consumer = Callable[[int, list[np.ndarray]], None]
SCHEDULES = ("every", "updates_every", "activations_every")


def _process_group() -> tuple[int, int]:
    """(world size, rank) of the default torch.distributed group; (1, 0) without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class Watch:
    """Records per-layer statistics of a training loop into a `History`; see `watch`."""

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
        curvature_every: int = 0,
        curvature_batch: tuple[Tensor, Tensor] | None = None,
        curvature_loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
        curvature_trace: bool = False,
        tensorboard_dir: str | Path | None = None,
        history: History | None = None,
    ) -> None:
        for name, value in zip(SCHEDULES, (every, updates_every, activations_every), strict=True):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0 (0 = never), got {value!r}")
        if flush_every < 1:
            raise ValueError(f"flush_every must be >= 1, got {flush_every}")
        if on_nonfinite not in ("warn", "raise", "stop"):
            raise ValueError(f"on_nonfinite must be warn, raise or stop, got {on_nonfinite!r}")
        if history is not None and run_dir is not None:
            raise ValueError("give run_dir or history, not both")
        if curvature_every and (curvature_batch is None or curvature_loss_fn is None):
            raise ValueError("curvature_every needs curvature_batch and curvature_loss_fn")
        self._world, rank = _process_group()
        if rank != 0:  # one writer: the other processes keep their rows in memory only
            run_dir = tensorboard_dir = None
        self.model = unwrap(model)
        self.optimizer = optimizer
        self.every, self.updates_every = every, updates_every
        self.activations_every = activations_every
        self.activation_grads, self.histograms = activation_grads, histograms
        self.check_nonfinite, self.on_nonfinite = check_nonfinite, on_nonfinite
        self.flush_every = flush_every
        self.curvature_every, self.curvature_trace = curvature_every, curvature_trace
        self.curvature_batch, self.curvature_loss_fn = curvature_batch, curvature_loss_fn
        self._measuring = False  # our own forward passes (curvature) are not training steps
        self.run = None
        if run_dir is not None:
            settings = dict(zip(SCHEDULES, (every, updates_every, activations_every), strict=True))
            self.run = RunDir(run_dir, {"model": type(self.model).__name__, "watch": settings})
        if history is None:
            history = History(self.run.metrics_dir if self.run else None)
        self.history = history
        if tensorboard_dir is not None:  # live export; the integration imports tensorboard
            from gradsight.integrations.tensorboard import TensorBoardSink, layer_kinds

            self.history.sinks.append(TensorBoardSink(tensorboard_dir, layer_kinds(self.model)))
        self.layout = parameter_layout(self.model)
        self.modules = watched_modules(self.model)
        self.nonfinite: NonFinite | None = None
        self.stopped = False  # set when on_nonfinite="stop" fires; loops should end
        self.latest: dict[str, float] = {}  # the last host value of each `log`ged name
        self._step = 0
        self._step_done = False
        self._inputs: tuple[tuple, dict] | None = None
        self._unit_dim = -1
        self._acts_now = False
        self._tap_calls: dict[str, int] = defaultdict(int)
        self._snapshot: list[Tensor] | None = None
        self._snapshot_taken = False
        self._previous_unit_mean: dict[str, np.ndarray] = {}
        self._warned: set[str] = set()
        # Device values waiting for the host transfer: (step, 1-D tensors, host consumer,
        # how each tensor combines across processes).
        self._pending: list[tuple[int, list[Tensor], Consumer, list[str] | None]] = []
        # Gradient reductions of this step not yet queued: (parameter indices, tensors).
        self._gradient_reads: list[tuple[list[int], list[Tensor]]] = []
        self._acts: dict[str, ActivationStats] = {}
        self._output_grads: dict[str, list[float]] = defaultdict(list)
        self._activation_handles: list[Any] = []
        self._handles = self._install()
        self._closed = False

    # ---- hooks ---------------------------------------------------------------------------

    def _install(self) -> list[Any]:
        model = self.model
        handles = [model.register_forward_pre_hook(self._on_forward_start, with_kwargs=True)]
        if self.optimizer is not None:
            handles.append(self.optimizer.register_step_pre_hook(self._before_step))
            handles.append(self.optimizer.register_step_post_hook(self._after_step))
        return handles

    def _install_activation_hooks(self) -> None:
        # Installed only for the steps that log activations and removed after the backward
        # pass: a module with no hooks takes torch's fast call path on the other steps.
        for watched in self.modules:
            hook = partial(self._on_output, watched.name, watched.kind, watched.unit_dim)
            self._activation_handles.append(watched.module.register_forward_hook(hook))
        for name, tap in hidden_taps(self.model):
            hook = partial(self._on_hidden_state, name)
            self._activation_handles.append(tap.register_forward_hook(hook))

    def _remove_activation_hooks(self) -> None:
        for handle in self._activation_handles:
            handle.remove()
        self._activation_handles = []

    def _logs(self, every: int, step: int | None = None) -> bool:
        return every > 0 and (self._step if step is None else step) % every == 0

    @torch.compiler.disable  # keep Dynamo out of the hooks (no per-layer recompiles)
    def _on_forward_start(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if self._measuring or not torch.is_grad_enabled():
            return  # evaluation, the non-finite replay, or a curvature estimate
        if self._step_done:  # the first forward after an optimizer step starts the next step
            self._step += 1
            self._step_done = False
        self._inputs = (args, kwargs)  # a reference, for the replay after a non-finite step
        self._unit_dim = -1
        self._tap_calls.clear()
        self._acts_now = self._logs(self.activations_every)
        if self._acts_now and not self._activation_handles:
            self._install_activation_hooks()

    @torch.compiler.disable  # keep Dynamo out of the hooks (no per-layer recompiles)
    def _on_output(self, name: str, kind: str, unit_dim: int | None, module, args, out) -> None:
        if not self._acts_now or not (torch.is_grad_enabled() and module.training):
            return  # the whole cost of a step that logs no activations
        if not isinstance(out, Tensor):
            self._warn_once(name, f"gradsight.watch: skipping {name!r}: its output is not a tensor")
            return
        if unit_dim is not None:
            self._unit_dim = unit_dim  # activations after this layer share its unit dimension
        reductions = reduce_output(out, kind, self._unit_dim, self.histograms)
        stats = self._acts.setdefault(name, ActivationStats(kind))
        count = out.numel() * self._world  # equal shards per process (DistributedSampler)
        self._send(
            reductions,
            lambda step, values: stats.add(values, count, self.histograms),
            reduce_ops(kind, self.histograms),
        )
        if self.activation_grads and out.requires_grad:
            out.register_hook(partial(self._on_output_grad, name))

    @torch.compiler.disable  # keep Dynamo out of the hooks (no per-layer recompiles)
    def _on_output_grad(self, name: str, grad: Tensor) -> None:
        # Squared, so processes add up: with a mean loss over W equal shards, the gradient at
        # a shard's outputs is 1/W of the local one, so the global square is sum / W^2.
        square = torch.linalg.vector_norm(grad.detach()).square().reshape(1)
        scale = 1.0 / self._world**2
        self._send(
            [square],
            lambda step, values: self._output_grads[name].append(scale * values[0][0]),
            ["sum"],
        )

    @torch.compiler.disable  # keep Dynamo out of the hooks (no per-layer recompiles)
    def _on_hidden_state(self, name: str, module, args, out: Tensor) -> None:
        t = self._tap_calls[name]
        self._tap_calls[name] += 1
        if self._acts_now and self.activation_grads and out.requires_grad:
            out.register_hook(partial(self._on_output_grad, f"{name}[{t}]"))

    def _before_step(self, optimizer: Any = None, args: Any = None, kwargs: Any = None) -> None:
        self._remove_activation_hooks()
        if self._logs(self.every):
            self._read_gradients()
        if self._logs(self.updates_every):
            self._take_snapshot()
        self._send_step()

    def _send_step(self) -> None:
        """Queue the step's gradient reductions; move what is pending to the host when due."""
        if self._logs(self.every):
            self._send_gradients()
        if self._logs(self.every) or self._acts:
            self._sync()
        if self._logs(self.curvature_every):
            self._record_curvature()

    def _record_curvature(self) -> None:
        """lambda_max, lambda_min (and the trace) of the loss Hessian at the current weights.

        Opt-in and costly: a few dozen Hessian-vector products, each read back on the host.
        """
        from gradsight.curvature import curvature_metrics

        self._measuring = True
        try:
            metrics = curvature_metrics(
                self.model,
                self.curvature_loss_fn,
                self.curvature_batch,
                trace=self.curvature_trace,
                seed=self._step,
            )
        finally:
            self._measuring = False
        self.history.log_many(self._step, metrics)

    def _after_step(self, optimizer: Any = None, args: Any = None, kwargs: Any = None) -> None:
        if self._snapshot_taken:
            self._record_updates()
        if self.optimizer is not None:
            lrs = [group["lr"] for group in self.optimizer.param_groups]
            layers = [""] + [f"group{i}" for i in range(1, len(lrs))]
            self.history.log_rows(self._step, ["lr"] * len(lrs), layers, lrs)
        self._step_done = True
        if (self._step + 1) % self.flush_every == 0:
            self._sync()
            self.history.flush()

    # ---- for loops the watch cannot hook (Lightning's closure): the steps told explicitly ---

    @property
    def current_step(self) -> int:
        """The optimizer step in progress (from 0)."""
        return self._step

    def begin_step(self) -> None:
        """Start a step as the model's forward pre-hook does (and arm the activation hooks),
        for frameworks whose training step may not call the watched module itself."""
        self._on_forward_start(self.model, (), {})
        self._inputs = None  # unknown here; the model's own forward, if it runs, records them

    def before_optimizer_step(self, params: Iterable[Tensor] | None = None) -> None:
        """Read this step's gradients now, for loops that run backward inside
        `optimizer.step(closure)`; needs a watch made with optimizer=None.

        Args:
            params: Read only these: the parameters of one of several optimizers that step
                within one step, each read when its optimizer steps (a later backward pass
                may add to them), the first read of a parameter in a step counting. Such a
                step ends at `end_step()`, not `after_optimizer_step()`; its updates are the
                change of the weights from the first of these calls to `end_step()`.
        """
        if self.optimizer is not None:
            raise RuntimeError("this watch reads the optimizer's steps itself")
        if params is None:
            self._before_step()
            return
        if self._logs(self.every):
            self._read_gradients({id(p) for p in params})
        if self._logs(self.updates_every) and not self._snapshot_taken:
            self._take_snapshot()  # before the first of the step's optimizers moves a weight

    def end_step(self) -> None:
        """End a step whose optimizers were told by `before_optimizer_step(params)`."""
        if self.optimizer is not None:
            raise RuntimeError("this watch reads the optimizer's steps itself")
        self._remove_activation_hooks()
        self._step_done = True  # the weights have moved: a non-finite gradient is not replayed
        self._send_step()
        self._after_step()

    def after_optimizer_step(self) -> None:
        """Record the update and end the step begun by `before_optimizer_step`."""
        if self.optimizer is not None:
            raise RuntimeError("this watch reads the optimizer's steps itself")
        self._after_step()

    def step(self) -> None:
        """Mark the end of an optimizer step, for a watch made without an optimizer.

        Call it right after `optimizer.step()`: gradients are read then; updates are the
        change of the weights since the previous `step()` call (so step 0 has none).
        """
        if self.optimizer is not None:
            raise RuntimeError("this watch reads the optimizer's steps itself; do not call step()")
        self._remove_activation_hooks()
        if self._logs(self.every):
            self._read_gradients()
            self._send_gradients()
        self._after_step()  # records the update when a snapshot was taken at the last call
        if self._logs(self.updates_every, self._step + 1):
            self._take_snapshot()  # the weights before the next step's update
        if self._logs(self.every) or self._acts:
            self._sync()

    # ---- measurements: device reductions, sent to host consumers -------------------------

    def _send(
        self, tensors: list[Tensor], consumer: Consumer, ops: list[str] | None = None
    ) -> None:
        """Queue 1-D device tensors; after the transfer, `consumer(step, host_arrays)` runs.

        `ops` says how each tensor combines across processes ("sum", "max", "mean"); None
        means it is the same on every process (gradients after DDP's all-reduce, weights).
        """
        self._pending.append((self._step, tensors, consumer, ops))

    def _read_gradients(self, only: set[int] | None = None) -> None:
        """Reduce the gradients present now (of the parameters whose id is in `only`) on the
        device, unless read already in this step; `_send_gradients` queues them."""
        layout = self.layout
        read = {i for indices, _ in self._gradient_reads for i in indices}
        present = [
            i
            for i, p in enumerate(layout.params)
            if p.grad is not None and i not in read and (only is None or id(p) in only)
        ]
        if not present:
            return
        grads = [layout.params[i].grad.detach() for i in present]
        tensors = [torch.stack(torch._foreach_norm(grads))]  # (P,): one kernel for all
        if self._logs(self.updates_every):
            # On the slower schedule: torch's CPU inf-norm costs ~15 2-norms; aminmax (min and
            # max in one pass) is the cheapest way to the largest magnitude.
            low, high = zip(*(g.aminmax() for g in grads), strict=True)
            tensors += [torch.stack(low), torch.stack(high)]
        self._gradient_reads.append((present, tensors))

    def _send_gradients(self) -> None:
        reads, self._gradient_reads = self._gradient_reads, []
        if not reads:
            return
        if len(reads) == 1:  # one optimizer per step: nothing to concatenate (no copy)
            present, tensors = reads[0]
        else:
            present = [i for indices, _ in reads for i in indices]
            tensors = [torch.cat(parts) for parts in zip(*(t for _, t in reads), strict=True)]
        self._send(tensors, partial(self._log_gradients, present))

    def _log_gradients(self, present: list[int], step: int, values: list[np.ndarray]) -> None:
        layout = self.layout
        owners = [layout.layer_of[i] for i in present]
        norms = values[0]
        per_layer = layer_norms(norms, owners, len(layout.layers))
        self._log_layers(step, "grad/norm", per_layer)
        global_norm = float(np.sqrt(np.sum(np.asarray(norms, dtype=np.float64) ** 2)))
        self.history.log(step, "grad/norm_global", global_norm)
        if len(values) == 3:
            largest = np.maximum(values[2], -values[1])
            self._log_layers(
                step, "grad/max_abs", layer_maxima(largest, owners, len(layout.layers))
            )
        if self.check_nonfinite and self.nonfinite is None and not math.isfinite(global_norm):
            param = next(
                layout.names[i] for i, v in zip(present, norms, strict=True) if not math.isfinite(v)
            )
            module = None
            if step == self._step and not self._step_done:  # weights as they made the NaN
                modules = [(m.name, m.module) for m in self.modules]
                module = first_nonfinite_module(self.model, modules, self._inputs)
            self._report(NonFinite(step, "gradient", module, param))

    def _log_layers(self, step: int, stat: str, per_layer: np.ndarray) -> None:
        kept = [i for i, v in enumerate(per_layer) if not np.isnan(v) or stat == "grad/norm"]
        names = [self.layout.layers[i] for i in kept]
        self.history.log_rows(step, [stat] * len(kept), names, [per_layer[i] for i in kept])

    def _take_snapshot(self) -> None:
        # foreach ops on .detach() views: on the leaf parameters themselves they are far slower.
        views = [p.detach() for p in self.layout.params]
        if self._snapshot is None:
            self._snapshot = [v.clone() for v in views]
        else:
            torch._foreach_copy_(self._snapshot, views)
        self._snapshot_taken = True

    def _record_updates(self) -> None:
        views = [p.detach() for p in self.layout.params]
        torch._foreach_sub_(self._snapshot, views)  # in place: the snapshot becomes -update
        tensors = [
            torch.stack(torch._foreach_norm(self._snapshot)),
            torch.stack(torch._foreach_norm(views)),
        ]
        self._send(tensors, self._log_updates)
        self._snapshot_taken = False

    def _log_updates(self, step: int, values: list[np.ndarray]) -> None:
        layout = self.layout
        count = len(layout.layers)
        update = layer_norms(values[0], layout.layer_of, count)
        weight = layer_norms(values[1], layout.layer_of, count)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = update / weight
        for stat, per_layer in (
            ("weight/norm", weight),
            ("update/norm", update),
            ("update/ratio", ratio),
        ):
            self.history.log_rows(step, [stat] * count, layout.layers, per_layer.tolist())

    def _log_activations(self, step: int) -> None:
        for name, stats in self._acts.items():
            if not stats.calls:
                continue
            summary = stats.summarize(self._previous_unit_mean.get(name))
            self._previous_unit_mean[name] = stats.unit_mean
            self.history.log_rows(
                step, list(summary), [name] * len(summary), list(summary.values())
            )
            if stats.histogram is not None:
                fractions = (stats.histogram / max(stats.histogram.sum(), 1)).tolist()
                bins = [f"act/hist/{i:02d}" for i in range(HISTOGRAM_BINS)]
                self.history.log_rows(step, bins, [name] * HISTOGRAM_BINS, fractions)
        for name, norms in self._output_grads.items():
            self.history.log(step, "act/grad_norm", math.sqrt(sum(norms)), name)
        self._acts = {}
        self._output_grads = defaultdict(list)

    # ---- user values, host transfer, non-finite handling ---------------------------------

    def log(self, **values: Tensor | float) -> None:
        """Record scalars (loss, metrics) for the current step; tensors stay on the device."""
        for name, value in values.items():
            if isinstance(value, Tensor):
                if value.numel() != 1:
                    shape = tuple(value.shape)
                    raise ValueError(f"watch.log: {name!r} must be a scalar, got shape {shape}")
                self._send([value.detach().reshape(1)], partial(self._log_value, name), ["mean"])
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                self._log_value(name, self._step, [np.array([value], dtype=np.float64)])
            else:
                kind = type(value).__name__
                raise ValueError(f"watch.log: {name!r} must be a number or a tensor, got {kind}")

    def _log_value(self, name: str, step: int, values: list[np.ndarray]) -> None:
        number = float(values[0][0])
        self.history.log(step, name, number)
        self.latest[name] = number
        checking = self.check_nonfinite and self.nonfinite is None
        if name == "loss" and checking and not math.isfinite(number):
            self._report(NonFinite(step, "loss", None, None))

    def _sync(self) -> None:
        """Move every queued device value to the host in one transfer, then run the consumers."""
        pending, self._pending = self._pending, []
        if self._world > 1:
            pending = self._all_reduce(pending)
        tensors = [t for _, group, _, _ in pending for t in group]
        if tensors:
            device = tensors[0].device
            tensors = [t if t.device == device else t.to(device) for t in tensors]
            host = torch.cat(tensors).double().cpu().numpy()  # the one host sync
            offset = 0
            for step, group, consumer, _ in pending:
                arrays = []
                for t in group:
                    arrays.append(host[offset : offset + t.numel()])
                    offset += t.numel()
                consumer(step, arrays)
        if self._acts:
            self._log_activations(self._step)

    def _all_reduce(self, pending: list) -> list:
        """Combine the queued values across processes: one collective per kind of reduction.

        Every process logs the same steps of the same model (SPMD), so the queues line up.
        """
        import torch.distributed as dist

        slots: dict[str, list[tuple[int, int]]] = {"sum": [], "max": [], "mean": []}
        for i, (*_, ops) in enumerate(pending):
            for j, op in enumerate(ops or ()):
                if op is not None:
                    slots[op].append((i, j))
        groups = [list(group) for _, group, _, _ in pending]
        for op, places in slots.items():
            if not places:
                continue
            parts = [groups[i][j].reshape(-1).double() for i, j in places]
            flat = torch.cat(parts)
            dist.all_reduce(flat, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
            if op == "mean":
                flat /= self._world
            for (i, j), piece in zip(places, flat.split([p.numel() for p in parts]), strict=True):
                groups[i][j] = piece
        return [(s, g, c, o) for (s, _, c, o), g in zip(pending, groups, strict=True)]

    def _report(self, event: NonFinite) -> None:
        self.nonfinite = event
        self.history.log(event.step, "nonfinite/module", 1.0, event.module or "")
        if event.param:
            self.history.log(event.step, "nonfinite/grad", 1.0, event.param)
        if self.on_nonfinite == "raise":
            raise FloatingPointError(f"gradsight.watch: {event}")
        if self.on_nonfinite == "stop":
            self.stopped = True  # the caller asked to be told by this flag, not by a warning
            return
        warnings.warn(f"gradsight.watch: {event}", RuntimeWarning, stacklevel=4)

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    # ---- lifetime ------------------------------------------------------------------------

    def close(self, status: str = "finished") -> History:
        """Remove every hook, move what is pending to the History and flush it.

        In a multi-process job that did not finish, values not yet combined across processes
        are dropped: another process may never join the collective that combines them.
        """
        if self._closed:
            return self.history
        self._closed = True
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._remove_activation_hooks()
        if self._world > 1 and status != "finished":
            self._pending = []
        try:
            self._sync()
        finally:
            self.history.flush()
            self.history.close_sinks()
            if self.run is not None:
                self.run.finish(status)
        return self.history

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: Any, traceback: Any) -> None:
        if kind is None:
            self.close("finished")
        else:
            self.close("interrupted" if issubclass(kind, KeyboardInterrupt) else "failed")


def watch(
    model: nn.Module, optimizer: torch.optim.Optimizer | None = None, **options: Any
) -> Watch:
    """Watch a training loop (see the module docstring for what is measured, and how).

    Args:
        model: The model; a DDP or torch.compile wrapper is unwrapped.
        optimizer: Its optimizer; without one, call `watch.step()` after each optimizer step.
        **options:
            every: Gradient norms (per layer and global) every N steps (default 1; 0 = never).
            updates_every: Weight norms, update norms and ratios, and the largest gradient
                element, every N steps (default 10).
            activations_every: Activation statistics and the gradient norm at each layer's
                output (and at each time step of gradsight RNNs) every N steps (default 10).
            activation_grads: Measure those output gradients (default True).
            histograms: Fixed-bin activation histograms (default False).
            check_nonfinite: Watch for NaN/Inf in losses and gradients (default True).
            on_nonfinite: "warn" (default), "raise" (FloatingPointError, before the optimizer
                applies the bad gradient) or "stop" (sets `watch.stopped`).
            run_dir: Write run.json and metric parts there.
            flush_every: Write a metrics part every N steps (default 100).
            tensorboard_dir: Also write every row live to TensorBoard there (needs the
                `tensorboard` extra).
            curvature_every: Log `curv/lambda_max`, `curv/lambda_min` (and `curv/trace`
                with curvature_trace=True) every N steps (default 0 = never), by Lanczos on
                `curvature_batch` with `curvature_loss_fn(model(x), y)`; costs a few dozen
                Hessian-vector products each time.
    """
    return Watch(model, optimizer, **options)
