"""`watch`: per-layer gradients, updates and activations of any training loop, at little cost.

```python
with gs.watch(model, optimizer) as watch:
    for x, y in loader:
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(); loss.backward(); optimizer.step()
        watch.log(loss=loss)          # tensors are fine: no host sync here
history = watch.history
```

The Watch keeps the lifecycle (install, step, log, close); each family of quantities lives in
a module of its own: `gradients`, `updates`, `activations` (modules and functional calls),
`temporal` (over time in RNNs), `transformer` (attention, residual stream, logits),
`nonfinite` (where a NaN came from), with `transfer` moving device values to the host.

How it measures:
- Gradients are read in the optimizer's step pre-hook and updates in its post-hook, so they
  are what the optimizer uses (after gradient accumulation; after GradScaler's unscaling,
  which runs before `optimizer.step`) and the real change of every weight, whatever the rule.
  A step GradScaler skips (inf/NaN gradients) never calls the optimizer and is not counted.
  With `read_gradients="backward"` (the default under Accelerate and the HF Trainer, which
  clip between backward and step) gradients are read as the last backward pass before the
  step accumulates them: before clipping.
- Activations, attention and residual statistics are read by hooks armed for the training
  forward passes of the steps that log them (autograd on, module in train mode) and removed
  before the optimizer step (for module outputs, one global forward hook that dispatches on
  the watched modules); functional activations through a `TorchFunctionMode` active during
  those forward passes only.
- Every statistic is reduced on the device. A logged step moves its values to the host in
  one transfer, in the optimizer's pre-hook (the update norms of step t travel with step
  t + 1, or at close). Steps that log nothing cost the hook calls. On the host, the values
  logged every step (gradient norms, the loop's values, learning rates) are checked at once
  and turned into History rows in bulk when the History is read or flushed.
- Nothing here draws random numbers or changes a tensor: training is bit-identical with and
  without watching.
- Non-finite values: the global gradient norm of each logged step and every logged loss are
  checked on the host after the transfer. A non-finite gradient is caught before the
  optimizer applies it; the step's forward pass is then replayed to name the first module
  (of all the model's modules) whose output is non-finite.
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

import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from gradsight.errors import InputError
from gradsight.telemetry.activations import Activations
from gradsight.telemetry.coverage import Coverage, coverage
from gradsight.telemetry.curvature_probe import CurvatureProbe
from gradsight.telemetry.functional import FunctionTap
from gradsight.telemetry.gradients import GradientNorms
from gradsight.telemetry.history import History
from gradsight.telemetry.layers import is_compiled, parameter_layout, unwrap, watched_modules
from gradsight.telemetry.nonfinite import (
    NonFinite,
    NonFiniteMonitor,
    OnNonFinite,
    first_nonfinite_module,
)
from gradsight.telemetry.optimizer_info import (
    accumulation_hooks,
    describe_optimizer,
    unwrap_optimizer,
)
from gradsight.telemetry.options import WatchOptions
from gradsight.telemetry.recorder import ForwardQuantity, Recorder, due
from gradsight.telemetry.temporal import Temporal
from gradsight.telemetry.transfer import Transfer, process_group
from gradsight.telemetry.transformer import TransformerStats
from gradsight.telemetry.updates import LearningRates, Updates
from gradsight.telemetry.user_values import UserValues


class Watch:
    """Records per-layer statistics of a training loop into a `History`; see `watch`."""

    def __init__(
        self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, **options: Any
    ) -> None:
        self.options = opts = WatchOptions(**options)
        world, rank = process_group()
        self._compiled = is_compiled(model)
        self.model = unwrap(model)
        self.optimizer = unwrap_optimizer(optimizer) if optimizer is not None else None
        self.every, self.updates_every = opts.every, opts.updates_every
        self.activations_every = opts.activations_every
        self._measuring = False  # our own forward passes (curvature) are not training steps
        self.run, self.history = opts.open_history(self.model, rank)
        self.layout = parameter_layout(self.model)
        _check_parameters(self.model, self.optimizer)
        self.modules = watched_modules(self.model)
        self._step_done = False
        self._inputs: tuple[tuple, dict] | None = None
        self._acts_now = False
        self._armed = False  # the forward quantities' hooks are installed
        self._site_handles: list[Any] = []
        self._recorder = Recorder(self.history, Transfer(world), compiled=self._compiled)
        rec = self._recorder
        self._monitor = NonFiniteMonitor(
            self.history, opts.on_nonfinite, self._replay, enabled=opts.check_nonfinite
        )
        # Held-back rows are logged in this order: the rates, the loop's values, the gradients.
        self._learning_rates = LearningRates(self.history)
        self._values = UserValues(rec, self._monitor.value)
        self._curvature = None
        if opts.curvature_every:
            self._curvature = CurvatureProbe(
                rec, self.model, opts.curvature_loss_fn, opts.curvature_batch, opts.curvature_trace
            )
        self._tap = FunctionTap()
        is_final, loss_scale = accumulation_hooks(optimizer)
        self.read_gradients = _gradient_moment(opts.read_gradients, is_final is not None, world)
        self._gradients = GradientNorms(
            rec, self.layout, opts.every, opts.updates_every, self._monitor.gradient,
            is_final, loss_scale,
        )  # fmt: skip
        self._updates = Updates(rec, self.layout)
        self._activations = Activations(
            rec, self.model, self.modules, self._tap, opts.activation_grads, opts.histograms,
            self._recorder.warn_once,
        )  # fmt: skip
        self._temporal = Temporal(rec, self.model, self._activations, self._recorder.warn_once)
        self._transformer = TransformerStats(rec, self.model, self._tap)
        # Read during the forward and backward passes of the steps that log activations.
        self._forward_quantities: tuple[ForwardQuantity, ...] = (
            self._activations,
            self._temporal,
            self._transformer,
        )
        self.history.meta["optimizer"] = describe_optimizer(self.optimizer)
        self.history.meta["gradients_read"] = self.read_gradients
        self.history.meta["layers"] = self.layout.describe(self.model)
        if self.run is not None:
            self.run.update(meta=self.history.meta)
        self._handles = self._install()
        self._closed = False

    # ---- hooks -----------------------------------------------------------------------------

    def _install(self) -> list[Any]:
        model = self.model
        start = self._recorder.hook(self._on_forward_start)
        handles = [model.register_forward_pre_hook(start, with_kwargs=True)]
        if self.read_gradients == "backward":
            handles += self._gradients.read_after_backward()
        if self.optimizer is not None:
            handles.append(self.optimizer.register_step_pre_hook(self._before_step))
            handles.append(self.optimizer.register_step_post_hook(self._after_step))
        return handles

    @property
    def _step(self) -> int:
        return self._recorder.step

    def _logs(self, every: int, step: int | None = None) -> bool:
        return due(every, self._step if step is None else step)

    def _on_forward_start(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if self._measuring or not torch.is_grad_enabled():
            return  # evaluation, the non-finite replay, or a curvature estimate
        if self._step_done:  # the first forward after an optimizer step starts the next step
            self._recorder.step += 1
            self._step_done = False
        self._inputs = (args, kwargs)  # a reference, for the replay after a non-finite step
        self._acts_now = self._logs(self.activations_every)
        if not self._acts_now:
            return  # the whole cost of a forward pass that logs nothing
        self._end_forward()  # a pass that raised, or a nested call of the model
        self._armed = True
        for quantity in self._forward_quantities:
            quantity.arm()
            quantity.start_forward()
        if module.training and not self._compiled:
            self._site_handles = self._tap.start_forward(self.model)
        # Seen by this very call: torch reads a module's forward hooks after its forward.
        end = self._recorder.hook(self._on_forward_end)
        self._site_handles.append(module.register_forward_hook(end, always_call=True))

    def _on_forward_end(self, module: nn.Module, args: tuple, out: Any) -> None:
        self._end_forward()
        if torch.is_grad_enabled() and module.training:
            self._transformer.on_model_output(out)

    def _end_forward(self) -> None:
        for handle in self._site_handles:
            handle.remove()
        self._site_handles = []
        self._tap.end_forward()

    def _disarm(self) -> None:
        if not self._armed:
            return  # the steps that log no activation: nothing to remove
        self._armed = False
        self._end_forward()
        for quantity in self._forward_quantities:
            quantity.disarm()

    def _before_step(self, optimizer: Any = None, args: Any = None, kwargs: Any = None) -> None:
        self._disarm()
        self._gradients.read()
        if self._logs(self.updates_every):
            self._updates.snapshot()
        self._send_step()

    def _send_step(self) -> None:
        """Queue the step's gradient reductions; move what is pending to the host when due."""
        self._gradients.send()
        if self._logs(self.every) or self._acts_now:
            self._sync()
        if self._curvature is not None and self._logs(self.options.curvature_every):
            self._measuring = True
            try:
                self._curvature.measure()
            finally:
                self._measuring = False

    def _after_step(self, optimizer: Any = None, args: Any = None, kwargs: Any = None) -> None:
        if self._updates.taken:
            self._updates.record()
        if self.optimizer is not None:
            self._learning_rates.note(self._step, self.optimizer.param_groups)
        self._step_done = True
        self._acts_now = False
        if (self._step + 1) % self.options.flush_every == 0:
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
        self._end_forward()  # the model's own forward, if it runs, starts it again
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
        self._require_no_optimizer()
        if params is None:
            self._before_step()
            return
        self._gradients.read({id(p) for p in params})
        if self._logs(self.updates_every) and not self._updates.taken:
            self._updates.snapshot()  # before the first of the step's optimizers moves a weight

    def end_step(self) -> None:
        """End a step whose optimizers were told by `before_optimizer_step(params)`."""
        self._require_no_optimizer()
        self._disarm()
        self._step_done = True  # the weights have moved: a non-finite gradient is not replayed
        self._send_step()
        self._after_step()

    def after_optimizer_step(self) -> None:
        """Record the update and end the step begun by `before_optimizer_step`."""
        self._require_no_optimizer()
        self._after_step()

    def step(self) -> None:
        """Mark the end of an optimizer step, for a watch made without an optimizer.

        Call it right after `optimizer.step()` (or the loop's own weight update): gradients
        are read then; updates are the change of the weights since the previous `step()`
        call (so step 0 has none).
        """
        if self.optimizer is not None:
            raise RuntimeError("this watch reads the optimizer's steps itself; do not call step()")
        self._disarm()
        acts = self._acts_now
        self._gradients.read()
        self._gradients.send()
        self._after_step()  # records the update when a snapshot was taken at the last call
        if self._logs(self.updates_every, self._step + 1):
            self._updates.snapshot()  # the weights before the next step's update
        if self._logs(self.every) or acts:
            self._sync()

    def _require_no_optimizer(self) -> None:
        if self.optimizer is not None:
            raise RuntimeError("this watch reads the optimizer's steps itself")

    # ---- user values, host transfer, non-finite handling ---------------------------------

    def log(self, **values: Tensor | float) -> None:
        """Record scalars (loss, metrics) for the current step; tensors stay on the device."""
        self._values.log(**values)

    @property
    def latest(self) -> dict[str, float]:
        """The last host value of each name given to `log`."""
        return self._values.latest

    @property
    def nonfinite(self) -> NonFinite | None:
        """The first non-finite loss or gradient seen, or None."""
        return self._monitor.event

    @property
    def stopped(self) -> bool:
        """Set when on_nonfinite="stop" fired: the loop should end."""
        return self._monitor.stopped

    def _sync(self) -> None:
        """Move every queued device value to the host in one transfer, then log."""
        self._recorder.transfer.sync()
        for quantity in self._forward_quantities:
            if quantity.pending:
                quantity.on_host(self._step)

    def _replay(self, step: int) -> str | None:
        if step != self._step or self._step_done:
            return None  # the weights have moved since they made the NaN
        modules = list(self.model.named_modules())
        return first_nonfinite_module(self.model, modules, self._inputs)

    # ---- coverage and lifetime -------------------------------------------------------------

    def coverage(self) -> Coverage:
        """What is measured on the model and what is not, with the reasons (functional
        activations and attention calls count once they have been seen in a logged step)."""
        transformer = self._transformer
        return coverage(
            self.model, self.layout, self.activations_every > 0,
            self._activations.functional_names, transformer.seen_attention,
            [name for name, _ in transformer.blocks], self._temporal.without_input_grad,
            self._compiled,
        )  # fmt: skip

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
        self._disarm()
        if self._recorder.world > 1 and status != "finished":
            self._recorder.transfer.drop()
        try:
            self._sync()
        finally:
            for drain in (self._learning_rates.drain, self._values.drain, self._gradients.drain):
                self.history.remove_row_source(drain)  # the History outlives the watch
            self.history.meta["coverage"] = self.coverage().to_dict()
            self.history.flush()
            self.history.close_sinks()
            if self.run is not None:
                self.run.finish(status, meta=self.history.meta)
        return self.history

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: Any, traceback: Any) -> None:
        if kind is None:
            self.close("finished")
        else:
            self.close("interrupted" if issubclass(kind, KeyboardInterrupt) else "failed")


def _check_parameters(model: nn.Module, optimizer: Any) -> None:
    """One clear error for a watch that could record nothing: a model with no trainable
    parameter, or an optimizer that holds none of the model's (another model's)."""
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    if not trainable:
        raise InputError(
            f"{type(model).__name__} has no trainable parameters (all frozen or none): "
            "there is nothing to watch"
        )
    if optimizer is None:
        return
    held = [p for group in optimizer.param_groups for p in group["params"]]
    if held and not any(id(p) in trainable for p in held):
        raise InputError(
            f"the optimizer holds none of {type(model).__name__}'s trainable parameters "
            "(it was built for another model, or over frozen ones): pass the model it trains"
        )


def _gradient_moment(asked: str, accelerated: bool, world: int) -> str:
    """ "backward" or "step" (see `gradients`): "auto" reads after the backward pass under
    Accelerate, whose loops clip in `accelerator.clip_grad_norm_` between backward and step."""
    moment = ("backward" if accelerated else "step") if asked == "auto" else asked
    if moment == "backward" and world > 1:
        # DDP all-reduces the gradients at the end of the backward pass, after these hooks:
        # they would see this process's gradients, not the ones every process steps with.
        if asked == "backward":
            warnings.warn(
                "read_gradients='backward' needs a single process; gradients are read at the "
                "optimizer step (after any clipping)",
                stacklevel=3,
            )
        return "step"
    return moment


def watch(
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
    sinks: Sequence[Any] = (),
    read_gradients: Literal["auto", "step", "backward"] = "auto",
    history: History | None = None,
) -> Watch:
    """Watch a training loop (see the module docstring for what is measured, and how).

    Args:
        model: The model; a DDP or torch.compile wrapper is unwrapped.
        optimizer: Its optimizer (or a wrapper holding it as `.optimizer`, as Accelerate's
            and Lightning's do); without one, call `watch.step()` after each update.
        every: Gradient norms (per layer and global) every N steps (default 1; 0 = never).
        updates_every: Weight norms, update norms and ratios, and the largest gradient
            element, every N steps (default 10).
        activations_every: Activation statistics (modules and functional calls), the
            gradient norm at each layer's output and at each time step of recurrent layers,
            attention, residual-stream and logit statistics, every N steps (default 10).
        activation_grads: Measure those output gradients (default True).
        histograms: Fixed-bin activation histograms (default False).
        check_nonfinite: Watch for NaN/Inf in losses and gradients (default True).
        on_nonfinite: "warn" (default), "raise" (FloatingPointError, before the optimizer
            applies the bad gradient) or "stop" (sets `watch.stopped`).
        run_dir: Write run.json and metric parts there.
        flush_every: Write a metrics part every N steps (default 100).
        curvature_every: Log `curv/lambda_max`, `curv/lambda_min` (and `curv/trace` with
            curvature_trace=True) every N steps (default 0 = never), by Lanczos on
            `curvature_batch` with `curvature_loss_fn(model(x), y)`; costs a few dozen
            Hessian-vector products each time.
        curvature_batch: `(x, y)` for the curvature estimates.
        curvature_loss_fn: The loss for the curvature estimates.
        curvature_trace: Also estimate the Hessian's trace (Hutch++).
        tensorboard_dir: Also write every row live to TensorBoard there (needs the
            `tensorboard` extra).
        sinks: Also send every row to these (`gradsight.integrations.Sink`: W&B, MLflow,
            TensorBoard or any object with `write` and `close`); closed with the watch.
        read_gradients: When gradients are read: "step" (in the optimizer's step pre-hook:
            what the optimizer uses, after any clipping), "backward" (as each is accumulated
            in the last backward pass before the step: before clipping, so clipped
            explosions stay visible; single process only), or "auto" (default: "backward"
            for an Accelerate-wrapped optimizer, as the HF Trainer's, "step" otherwise).
        history: Append to this History instead of a new one (not with run_dir).

    Returns:
        The Watch: a context manager; `watch.history` holds what was recorded and
        `watch.coverage()` says what was measured.
    """
    return Watch(
        model,
        optimizer,
        every=every,
        updates_every=updates_every,
        activations_every=activations_every,
        activation_grads=activation_grads,
        histograms=histograms,
        check_nonfinite=check_nonfinite,
        on_nonfinite=on_nonfinite,
        run_dir=run_dir,
        flush_every=flush_every,
        curvature_every=curvature_every,
        curvature_batch=curvature_batch,
        curvature_loss_fn=curvature_loss_fn,
        curvature_trace=curvature_trace,
        tensorboard_dir=tensorboard_dir,
        sinks=tuple(sinks),
        read_gradients=read_gradients,
        history=history,
    )
