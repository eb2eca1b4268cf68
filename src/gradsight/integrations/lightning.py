"""Lightning: `GradsightCallback` watches a LightningModule while a Trainer fits it.

```python
from gradsight.integrations.lightning import GradsightCallback

trainer = lightning.Trainer(max_epochs=5, callbacks=[GradsightCallback(run_dir="runs/pl")])
trainer.fit(module, loader)            # findings are printed when fit ends
history = trainer.callbacks[0].history  # or gs.History.load("runs/pl")
```

Where it reads (why not the optimizer's own hooks, as `gs.watch` does): Lightning evaluates
the loss inside `optimizer.step(closure)`, so the optimizer's step pre-hook runs before the
backward pass. The gradients are read in `on_before_optimizer_step` instead, which Lightning
calls after the closure (after gradient accumulation) and after AMP's `unscale_`, and before
gradient clipping; the update is read in the optimizer's step post-hook, which a step that
GradScaler skips never reaches (that step is not counted, as with `gs.watch`).

What it records: every statistic of `gs.watch` (per-layer gradient norms, updates,
activations) plus `lr` per optimizer (layer "" for the first, "optimizer<i>" after) and the
`loss` that `training_step` returned for the micro-batch that completed each step, every
step in the History. The rows of every `trainer.log_every_n_steps`-th step (steps 0, n, 2n,
..., the steps a watch's own schedules measure) also go to the Trainer's loggers, named by
`sinks.metric_tag` (`gradsight.grad.norm/<layer>`, `gradsight/loss`) at the watch's step (the
number of steps before it; Lightning logs its own metrics at steps n - 1, 2n - 1, ...), except
the `act/hist/NN` bins (histograms go to TensorBoard through `tensorboard_dir`). `sinks=`
feeds other trackers (`WandbSink`, `MlflowSink`) every row, at their own `every`.

Several optimizers (Lightning 2 steps them only under manual optimization, several
`opt.step()` calls in one `training_step`): a step is then one training batch in which at
least one optimizer stepped. Each optimizer's parameters have their gradients read when it
steps (so a later backward pass, such as a generator's loss reaching the discriminator, does
not change what is recorded for the discriminator), and each layer is recorded once per step;
updates are the change of the weights over the batch, activations combine every forward pass
of the batch, and a layer whose optimizer did not step in a batch has a NaN gradient norm.
A non-finite gradient is then reported after the step, not before it.

Multi-process jobs (strategy "ddp", "ddp_spawn", ...): every process watches, and the
statistics are those of the global batch, combined across processes as `gs.watch` combines
them under torch.distributed (gradients read after DDP's all-reduce; activation sums, counts
and maxima reduced across processes; losses averaged), for shards of equal size as Lightning's
DistributedSampler makes them. Every process records the same rows (the others keep them in
memory); the global-zero process alone writes the run directory and TensorBoard, feeds the
loggers and prints the findings (`findings` stays empty on the others). Under "ddp_spawn" the
callback in the launching process is not the one that watched: load the run directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from rich.console import Console

from gradsight.errors import InputError
from gradsight.integrations.sinks import StepBuffer
from gradsight.run_files import FINDINGS_JSON
from gradsight.telemetry.history import History
from gradsight.telemetry.run_dir import RunDir
from gradsight.telemetry.sink import Sink
from gradsight.telemetry.watch import Watch


class LoggerSink:
    """Passes the rows of every `trainer.log_every_n_steps`-th step to a Trainer's loggers.

    Rows are gathered per step as `{metric_tag: value}` and handed over by `flush()`, one
    `log_metrics` call per step and logger, in step order (a watch logs many small groups per
    step, and some of a step's rows, its loss and updates, arrive with the next step's
    transfer).
    """

    def __init__(self, trainer: pl.Trainer) -> None:
        self.trainer = trainer
        self._buffer = StepBuffer(every=trainer.log_every_n_steps)

    def write(
        self, step: int, names: Sequence[str], layers: Sequence[str], values: Sequence[float]
    ) -> None:
        self._buffer.add(step, names, layers, values)

    def flush(self, before: int | None = None) -> None:
        """Log the gathered steps (only those before step `before`, when given)."""
        for step, metrics in self._buffer.pop(before):
            for logger in self.trainer.loggers:
                logger.log_metrics(metrics, step=step)

    def close(self) -> None:
        self.flush()
        for logger in self.trainer.loggers:
            logger.save()


class GradsightCallback(pl.Callback):
    """Watch the LightningModule a Trainer fits; diagnose the run when fit ends.

    Args:
        run_dir: Keep the run there (run.json, metric parts, findings.json); None keeps the
            History in memory only.
        tensorboard_dir: Also write every row live to TensorBoard event files there,
            histograms included (extra `[tensorboard]`).
        sinks: More writers fed every row as it is logged (`WandbSink`, `MlflowSink`, any
            `Sink`), by the global-zero process only; closed when fit ends.
        diagnose: Run `gs.diagnose` when fit ends and print the findings.
        console: Where to print them (default: a rich Console on stdout).
        **watch_options: Passed to `gs.watch` (every, updates_every, activations_every,
            histograms, on_nonfinite, flush_every, ...).
    """

    def __init__(
        self,
        run_dir: str | Path | None = None,
        *,
        tensorboard_dir: str | Path | None = None,
        sinks: Sequence[Sink] = (),
        diagnose: bool = True,
        console: Console | None = None,
        **watch_options: Any,
    ) -> None:
        for taken in ("optimizer", "history"):
            if taken in watch_options:
                raise InputError(f"GradsightCallback sets {taken!r} itself; do not pass it")
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.tensorboard_dir = tensorboard_dir
        self.sinks = tuple(sinks)
        self.diagnose = diagnose
        self.console = console
        self.watch_options = watch_options
        self.watch: Watch | None = None
        self.run: RunDir | None = None
        self.history: History | None = None
        self.findings: list = []
        self._logger_sink: LoggerSink | None = None
        self._optimizers: list[Any] = []
        self._handles: list[Any] = []
        self._stepped = False

    # ---- start and end of fit ------------------------------------------------------------

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Every process watches (under DDP the statistics are combined by collectives that all
        # of them join); the global-zero process alone writes.
        sinks: list[Sink] = []
        self._logger_sink = None
        if trainer.is_global_zero:
            # log_every_n_steps=0: Lightning logs nothing, nor do we.
            if trainer.loggers and trainer.log_every_n_steps:
                self._logger_sink = LoggerSink(trainer)
                sinks.append(self._logger_sink)
            if self.tensorboard_dir is not None:
                from gradsight.integrations.tensorboard import TensorBoardSink, layer_kinds

                sinks.append(TensorBoardSink(self.tensorboard_dir, layer_kinds(pl_module)))
            sinks += self.sinks
            if self.run_dir is not None:
                config = {"model": type(pl_module).__name__, "watch": self.watch_options}
                self.run = RunDir(self.run_dir, {**config, "integration": "lightning"})
        history = History(self.run.metrics_dir if self.run else None)
        history.sinks.extend(sinks)
        # No optimizer: its pre-hook would run before Lightning's closure computes gradients.
        self.watch = Watch(pl_module, None, history=history, **self.watch_options)
        self.history = self.watch.history
        self._optimizers = list(trainer.optimizers)
        self._handles = [
            optimizer.register_step_post_hook(self._after_optimizer_step)
            for optimizer in self._optimizers
        ]

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.watch is None:
            return
        self._close("finished")
        if self.diagnose and trainer.is_global_zero:
            from gradsight.diagnosis import diagnose, save_findings
            from gradsight.diagnosis.finding_text import print_findings

            self.findings = diagnose(self.history)
            if self.run is not None:
                save_findings(self.findings, self.run.path / FINDINGS_JSON)
            console = self.console or Console()
            console.print("[bold]gradsight[/]: findings of this fit")
            print_findings(console, self.findings)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if self.watch is not None:
            self._close("interrupted" if isinstance(exception, KeyboardInterrupt) else "failed")

    def _close(self, status: str) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        watch, self.watch = self.watch, None
        try:
            watch.close(status)  # also closes the History's sinks
        finally:
            if self.run is not None:
                self.run.finish(status, meta=watch.history.meta)

    # ---- one step ------------------------------------------------------------------------
    # Lightning owns the loop and runs backward inside optimizer.step(closure), so the Watch
    # is told the step's boundaries: begin_step, then before/after_optimizer_step with one
    # optimizer; with several, before_optimizer_step(its parameters) for each that steps and
    # end_step when the batch ends.

    @property
    def _several(self) -> bool:
        return len(self._optimizers) > 1

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.watch is not None and torch.is_grad_enabled():
            # What the module's forward pre-hook does, for a training_step that calls its
            # submodules rather than `self(...)`: start the step, arm the activation hooks.
            # The inputs are unknown here, so a non-finite replay names no module unless the
            # module's own forward runs (its pre-hook then records the real inputs).
            self.watch.begin_step()

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        if self.watch is None:
            return
        if self._several:  # only this optimizer's gradients: later backward passes add to them
            params = [p for group in optimizer.param_groups for p in group["params"]]
            self.watch.before_optimizer_step(params)
            return
        self.watch.before_optimizer_step()  # accumulated, unscaled, not yet clipped
        if self._logger_sink is not None:  # the earlier steps are complete now
            self._logger_sink.flush(before=self.watch.current_step)

    def _after_optimizer_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        watch = self.watch
        if watch is None:
            return
        index = next((i for i, o in enumerate(self._optimizers) if o is optimizer), 0)
        lrs = [group["lr"] for group in optimizer.param_groups]
        prefix = "" if index == 0 else f"optimizer{index}"  # gs.watch's names for one optimizer
        groups = [prefix] + [f"{prefix}/group{i}".lstrip("/") for i in range(1, len(lrs))]
        watch.history.log_rows(watch.current_step, ["lr"] * len(lrs), groups, lrs)
        if not self._several:
            watch.after_optimizer_step()  # updates, flush; the next forward starts the next step
        self._stepped = True

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.watch is None or not self._stepped:
            return  # an accumulation micro-batch: the step is not over
        self._stepped = False
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        # Lightning hands back the loss divided by the accumulation factor it backpropagated.
        scale = trainer.accumulate_grad_batches if pl_module.automatic_optimization else 1
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            self.watch.log(loss=loss.detach() * scale)
        elif isinstance(loss, (int, float)) and not isinstance(loss, bool):
            self.watch.log(loss=float(loss) * scale)
        if self._several:
            self.watch.end_step()  # updates over the batch, activations, one host transfer
            if self._logger_sink is not None:
                self._logger_sink.flush(before=self.watch.current_step)
