"""Integrations: gradsight where people already train (Lightning, TensorBoard, W&B, MLflow).

Each optional package is imported only when its integration is used:

- `gradsight.integrations.tensorboard`: `tensorboard(history, logdir)` (also `gs.export`)
  and `TensorBoardSink`, the live writer (extra `[tensorboard]`);
- `gradsight.integrations.lightning`: `GradsightCallback` (extra `[lightning]`);
- `gradsight.integrations.wandb`: `WandbSink`, a watch's rows as metrics of a W&B run
  (extra `[wandb]`);
- `gradsight.integrations.mlflow`: `MlflowSink`, the same for an MLflow run (extra `[mlflow]`);
- `gradsight.integrations.sinks`: the `Sink` protocol that feeds a watch's rows to such
  writers as they are logged (`gs.watch(..., sinks=[...])`, `GradsightCallback(sinks=...)`,
  `gs.fit(..., sinks=...)`), the one naming scheme of every tracker (`metric_tag`:
  `gradsight.<statistic>/<layer>`, `gradsight/<global row>`) and `StepBuffer`, which
  gathers a step's rows for trackers that want one call per step.
"""

from gradsight.integrations import export
from gradsight.integrations.sinks import StepBuffer, metric_tag
from gradsight.telemetry.sink import Sink

__all__ = ["Sink", "StepBuffer", "export", "metric_tag"]
