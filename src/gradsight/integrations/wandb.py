"""Weights & Biases: a watch's rows as metrics of the user's W&B run, live.

```python
import wandb
from gradsight.integrations.wandb import WandbSink

run = wandb.init(project="demo")
with gs.watch(model, optimizer, every=10, sinks=[WandbSink(run, every=10)]) as watch:
    ...                                  # train; wandb.log your own metrics as usual
```

Names are `sinks.metric_tag`'s: `gradsight.grad.norm/<layer>` (one W&B section per
statistic, its layers together) and `gradsight/loss`, `gradsight/lr` for global rows.

Steps: W&B keeps one step counter per run, and a `run.log(..., step=s)` below it is dropped.
The sink never passes `step=`: each of its calls is a W&B row of its own that carries the
watch's step as the metric `gradsight/step`, declared with `run.define_metric` as the x-axis
of every `gradsight/*` and `gradsight.*` metric (W&B's documented way of logging against a
step of one's own, as Lightning's WandbLogger does). Rows are gathered per step
(`sinks.StepBuffer`): one `run.log` per kept step when `every` is the watch's `every` or a
multiple of it (else a step's late rows, such as its loss, come in a later row with the same
`gradsight/step`). Your own `wandb.log` calls without `step=` are unaffected; if you pass
`step=` yourself, each gradsight row advances W&B's counter too, so give your metrics a step
metric of their own (`define_metric`) instead.

The `act/hist/NN` histogram bins are not sent (TensorBoard takes them).
"""

from __future__ import annotations

from typing import Any

from gradsight.errors import MissingPackageError
from gradsight.integrations.sinks import PREFIX, BufferedSink, StepBuffer


class WandbSink(BufferedSink):
    """Logs rows as metrics of a W&B run, one `run.log` per kept step (a `Sink`).

    Args:
        run: The W&B run (`wandb.init()`'s); None takes `wandb.run`, the current one.
        every: Send only the steps divisible by this (best the watch's `every` or a multiple).
        prefix: What the metric names start with (`metric_tag`); another prefix keeps two
            watched models of one run apart.

    Raises:
        RuntimeError: When run is None and no W&B run is active.
    """

    def __init__(self, run: Any = None, *, every: int = 1, prefix: str = PREFIX) -> None:
        self._buffer = StepBuffer(every, prefix)  # checks every first
        if run is None:
            try:
                import wandb
            except ImportError as error:
                raise MissingPackageError(
                    "WandbSink needs the wandb package: pip install 'gradsight[wandb]'"
                ) from error
            run = wandb.run
            if run is None:
                raise RuntimeError("WandbSink: no active W&B run; call wandb.init() or pass run=")
        self.run = run
        self.step_metric = f"{prefix}/step"
        run.define_metric(self.step_metric, hidden=True)  # an axis, not a chart
        for glob in (f"{prefix}/*", f"{prefix}.*"):  # W&B globs are prefixes followed by *
            run.define_metric(glob, step_metric=self.step_metric)

    def _log(self, steps: list[tuple[int, dict[str, float]]]) -> None:
        for step, metrics in steps:
            self.run.log({**metrics, self.step_metric: step})  # the axis wins a clash
