"""MLflow: a watch's rows as metrics of an MLflow run, live.

```python
import mlflow
from gradsight.integrations.mlflow import MlflowSink

with mlflow.start_run():
    with gs.watch(model, optimizer, every=10, sinks=[MlflowSink(every=10)]) as watch:
        ...                              # train
```

Names are `sinks.metric_tag`'s (`gradsight.grad.norm/<layer>`, `gradsight/loss`), which keep
to the characters MLflow allows (letters, digits, `_ - . /`; `hidden_tap[3]` becomes
`hidden_tap_3_`); each row is logged at the watch's step. Rows are gathered per step
(`sinks.StepBuffer`) and sent with `MlflowClient.log_batch`, at most MAX_BATCH metrics a call
(MLflow's limit). The `act/hist/NN` histogram bins are not sent.
"""

from __future__ import annotations

import time

from gradsight.errors import MissingPackageError
from gradsight.integrations.sinks import PREFIX, BufferedSink, StepBuffer

MAX_BATCH = 1000  # metrics per log_batch call (mlflow.utils.validation.MAX_METRICS_PER_BATCH)


class MlflowSink(BufferedSink):
    """Logs rows as metrics of an MLflow run through `MlflowClient.log_batch` (a `Sink`).

    Args:
        run_id: The run to log to; None takes the active run (`mlflow.active_run()`).
        every: Send only the steps divisible by this (best the watch's `every` or a multiple).
        prefix: What the metric names start with (`metric_tag`).
        tracking_uri: The tracking server or store; None uses MLflow's current one.

    Raises:
        RuntimeError: When run_id is None and no MLflow run is active.
    """

    def __init__(
        self,
        run_id: str | None = None,
        *,
        every: int = 1,
        prefix: str = PREFIX,
        tracking_uri: str | None = None,
    ) -> None:
        self._buffer = StepBuffer(every, prefix)  # checks every first
        try:
            import mlflow
        except ImportError as error:
            raise MissingPackageError(
                "MlflowSink needs MLflow: pip install 'gradsight[mlflow]'"
            ) from error
        if run_id is None:
            active = mlflow.active_run()
            if active is None:
                raise RuntimeError(
                    "MlflowSink: no active MLflow run; call mlflow.start_run() or pass run_id="
                )
            run_id = active.info.run_id
        self.run_id = run_id
        self.client = mlflow.MlflowClient(tracking_uri)

    def _log(self, steps: list[tuple[int, dict[str, float]]]) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)  # milliseconds, as MLflow stores them
        metrics = [
            Metric(key, value, stamp, step) for step, row in steps for key, value in row.items()
        ]
        for start in range(0, len(metrics), MAX_BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[start : start + MAX_BATCH])
