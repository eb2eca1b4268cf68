"""Hugging Face Trainer: `GradsightCallback` watches the model a `transformers.Trainer` trains.

```python
from gradsight.integrations.transformers import GradsightCallback

trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=[GradsightCallback()])
trainer.train()                          # the findings are logged when training ends
history = trainer.callback_handler.callbacks[-1].history   # or gs.History.load(run_dir)
```

What it reads, and when (transformers 4.40 to 5.x, single process or under Accelerate):
- Gradients: the Trainer clips them (`max_grad_norm`, 1.0 by default) in
  `accelerator.clip_grad_norm_` between the last backward pass and `optimizer.step()`, and
  no callback runs in between. The watch reads each gradient as the last backward pass of
  the step accumulates it (`read_gradients="backward"`, gated by Accelerate's
  `sync_gradients`, which the Trainer sets before each micro-batch): after gradient
  accumulation, before clipping, so `grad/norm_global` is the norm the Trainer logs as
  `grad_norm` and an explosion stays visible under clipping. (Under several processes the
  watch reads at the optimizer step instead, after clipping: see `gs.watch`.)
- Loss: every optimizer step's training loss, from the model's own output (`outputs.loss`),
  combined over the step's micro-batches as the Trainer combines them: summed when the
  Trainer passes `num_items_in_batch` (the loss is then already a share of the step's
  tokens), averaged otherwise. Not the Trainer's `logging_steps` average. A
  `compute_loss_func` or an overridden `compute_loss` is not seen: log that loss yourself.
- Everything else `gs.watch` records (updates, activations, attention, residual stream).

Where it goes: a run directory (`OUTPUT_DIR/gradsight/run-<time>` by default), and, for each
integration in `args.report_to` that gradsight has a sink for (tensorboard, wandb, mlflow),
the statistics as that tracker's metrics at the Trainer's logging steps, on the Trainer's
`global_step` axis (TensorBoard: a run of its own, `OUTPUT_DIR/runs/gradsight`). At the end
of training the findings are written to `findings.json` and logged through transformers'
logger, one line each, and kept in `callback.findings`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback
from transformers.utils import logging

from gradsight.run_files import FINDINGS_JSON
from gradsight.telemetry.history import History
from gradsight.telemetry.run_dir import new_run_dir
from gradsight.telemetry.sink import Sink
from gradsight.telemetry.watch import Watch

logger = logging.get_logger("gradsight")

# Outputs whose loss is a share of the step's tokens when this keyword reaches the model.
_NUM_ITEMS = "num_items_in_batch"


class TrainerStepSink:
    """Forwards the rows of the Trainer's logging steps to `sink`, numbered by the Trainer's
    `global_step` (the watch's step + 1), so they line up with the Trainer's own metrics.

    Args:
        sink: Where the rows go.
        logging_steps: The Trainer's logging interval (`state.logging_steps`).
    """

    def __init__(self, sink: Sink, logging_steps: int) -> None:
        self.sink, self.logging_steps = sink, max(1, int(logging_steps))

    def write(
        self, step: int, names: Sequence[str], layers: Sequence[str], values: Sequence[float]
    ) -> None:
        if (step + 1) % self.logging_steps == 0:
            self.sink.write(step + 1, names, layers, values)

    def close(self) -> None:
        self.sink.close()


def tracker_sinks(report_to: Sequence[str], output_dir: str | Path) -> list[Sink]:
    """Sinks for the trackers in `report_to` that gradsight writes to (others are skipped)."""
    sinks: list[Sink] = []
    if "tensorboard" in report_to:
        from gradsight.integrations.tensorboard import TensorBoardSink

        sinks.append(TensorBoardSink(Path(output_dir) / "runs" / "gradsight"))
    if "wandb" in report_to:
        from gradsight.integrations.wandb import WandbSink

        sinks.append(WandbSink())
    if "mlflow" in report_to:
        from gradsight.integrations.mlflow import MlflowSink

        sinks.append(MlflowSink())
    return sinks


def _output_loss(output: Any) -> torch.Tensor | None:
    loss = output.get("loss") if isinstance(output, dict) else getattr(output, "loss", None)
    if isinstance(loss, torch.Tensor) and loss.numel() == 1:
        return loss.detach().reshape(())
    return None


class GradsightCallback(TrainerCallback):
    """Watches the Trainer's model; see the module docstring.

    Args:
        run_dir: The run directory (default `args.output_dir/gradsight/run-<time>`, a new
            one for every `train()`; `save=False` keeps the History in memory only).
        save: Write the run directory (default True).
        diagnose: Diagnose at the end of training and log the findings (default True).
        report: Send the statistics to the trackers of `args.report_to` (default True).
        sinks: More sinks for every row (each gets every step, numbered from 0).
        **watch_options: Passed to `gs.watch` (`every`, `activations_every`, ...).
    """

    def __init__(
        self,
        run_dir: str | Path | None = None,
        *,
        save: bool = True,
        diagnose: bool = True,
        report: bool = True,
        sinks: Sequence[Sink] = (),
        **watch_options: Any,
    ) -> None:
        for fixed in ("run_dir", "history", "tensorboard_dir"):
            if fixed in watch_options:
                raise TypeError(f"{fixed} is not a watch option here; see GradsightCallback")
        self.run_dir, self.save, self.diagnose, self.report = run_dir, save, diagnose, report
        self.sinks = list(sinks)
        self.watch_options = watch_options
        self.watch: Watch | None = None
        self.history: History | None = None
        self.run_path: Path | None = None  # the run directory written, once training began
        self.findings: list = []
        self._handle: Any = None
        self._losses: list[torch.Tensor] = []
        self._loss_is_share = False

    # ---- Trainer events --------------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        model, optimizer = kwargs.get("model"), kwargs.get("optimizer")
        if model is None or optimizer is None:
            raise RuntimeError("GradsightCallback needs the Trainer's model and optimizer")
        self.close("failed")  # a watch still open: the previous train() raised
        self._losses, self.findings = [], []
        sinks = list(self.sinks)
        if self.report and state.is_world_process_zero:
            logging_steps = state.logging_steps if args.logging_strategy == "steps" else 0
            if logging_steps:
                trackers = tracker_sinks(args.report_to or [], args.output_dir)
                sinks += [TrainerStepSink(sink, logging_steps) for sink in trackers]
        run_dir = None
        if self.save:
            run_dir = self.run_dir or new_run_dir(Path(args.output_dir) / "gradsight", "run")
        self.watch = Watch(model, optimizer, run_dir=run_dir, sinks=sinks, **self.watch_options)
        self.history = self.watch.history
        self.run_path = self.watch.run.path if self.watch.run is not None else None
        self._handle = model.register_forward_hook(self._on_model_output, with_kwargs=True)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        losses, self._losses = self._losses, []
        if self.watch is None or not losses:
            return
        total = torch.stack(losses).sum()
        self.watch.log(loss=total if self._loss_is_share else total / len(losses))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.watch is None:
            return
        self.close("finished")
        if self.diagnose and state.is_world_process_zero:
            self._diagnose()

    def close(self, status: str = "finished") -> None:
        """Stop watching (the Trainer has no event for a failed run: call
        `close("failed")` or `close("interrupted")` yourself when `train()` raises)."""
        if self.watch is None:
            return
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        watch, self.watch = self.watch, None
        watch.close(status)

    # ---- internals ------------------------------------------------------------------------

    def _on_model_output(self, module: Any, args: tuple, kwargs: dict, output: Any) -> None:
        if not (torch.is_grad_enabled() and module.training):
            return  # evaluation and prediction
        loss = _output_loss(output)
        if loss is not None:
            self._losses.append(loss)
            self._loss_is_share = kwargs.get(_NUM_ITEMS) is not None

    def _diagnose(self) -> None:
        from gradsight.diagnosis import diagnose, save_findings

        self.findings = diagnose(self.history)
        if self.run_path is not None:
            save_findings(self.findings, self.run_path / FINDINGS_JSON)
        if not self.findings:
            logger.warning("gradsight: no problem found")
        for finding in self.findings:
            remedies = ", ".join(remedy.name for remedy in finding.remedies[:3])
            logger.warning(
                "gradsight: %s %s: %s%s",
                finding.severity,
                finding.kind,
                finding.summary,
                f" (try: {remedies})" if remedies else "",
            )
