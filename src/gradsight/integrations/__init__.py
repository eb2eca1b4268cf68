"""Integrations: gradsight where people already train (Lightning, TensorBoard).

Each optional package is imported only when its integration is used:

- `gradsight.integrations.tensorboard`: `tensorboard(history, logdir)` (also `gs.export`)
  and `TensorBoardSink`, the live writer (extra `[tensorboard]`);
- `gradsight.integrations.lightning`: `GradsightCallback` (extra `[lightning]`);
- `gradsight.integrations.sinks`: `Sink`, `metric_tag`, which feed a watch's
  rows to such writers as they are logged.
"""

from gradsight.integrations import export
from gradsight.integrations.sinks import Sink, metric_tag

__all__ = ["Sink", "export", "metric_tag"]
