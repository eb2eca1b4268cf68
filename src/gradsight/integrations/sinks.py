"""Sinks: where a History's rows go besides the History itself (TensorBoard, W&B, MLflow, ...).

A sink (`gradsight.telemetry.sink.Sink`) is anything with
`write(step, names, layers, values)` and `close()`: it receives the
same rows, in the same groups, that `History.log_rows` receives. Give it to a watch
(`gs.watch(model, optimizer, sinks=[sink])`, `GradsightCallback(sinks=[...])`,
`gs.fit(..., sinks=[...])`) and it is fed live, then closed when the watch closes.

Names, one scheme for every tracker (`metric_tag`): a layer's row of statistic `name` is
`gradsight.<name>/<layer>` and a global row is `gradsight/<name>`, the slashes of `name` turned
into dots. TensorBoard and W&B make a section of the part before the first "/", so each
statistic gets one section holding its layers (`gradsight.grad.norm/encoder.0`, ...), and the
global rows (`gradsight/loss`, `gradsight/lr`, `gradsight/grad.norm_global`) share one. The
prefix keeps the names apart from the user's own metrics. Characters outside letters, digits,
`_ - . /` (which TensorBoard and MLflow reject) become `_`: `hidden_tap[3]` -> `hidden_tap_3_`.

When to hand rows over: a watch sends a step's rows in several groups, and some of them (its
loss, its update) only with its next host transfer, at the next step it measures (`every`
steps later for `gs.watch(every=...)`). `StepBuffer` gathers rows per step and releases a
step once rows of a step more than `lag` (default: its `every`) steps later arrive, so a sink
whose `every` is the watch's (or a multiple of it) hands each step over once, whole. With a
smaller `every`, rows that come later than that are handed over on their own, afterwards.
Trackers that want one call per step (W&B) or few calls (MLflow) use it.

A sink for another tracker, in ten lines:

```python
class PrintSink:
    def __init__(self, every=10):
        self.buffer = StepBuffer(every)

    def write(self, step, names, layers, values):
        self.buffer.add(step, names, layers, values)
        for step, metrics in self.buffer.ready():  # {tag: value} of each complete step
            print(step, metrics)

    def close(self):
        for step, metrics in self.buffer.pop():
            print(step, metrics)
```
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gradsight.errors import InputError

PREFIX = "gradsight"
HISTOGRAM_PREFIX = "act/hist/"  # the bins of `watch(..., histograms=True)`: not scalars
_ILLEGAL_CHARACTERS = re.compile(r"[^-/\w.]")  # TensorBoard's rule for tags; MLflow allows these


def clean_tag(tag: str) -> str:
    """`tag` with the characters TensorBoard and MLflow reject replaced by `_`."""
    return _ILLEGAL_CHARACTERS.sub("_", tag)


def metric_section(name: str, prefix: str = PREFIX) -> str:
    """The section of statistic `name`'s per-layer rows: `<prefix>.<name, "/" -> ".">`."""
    return clean_tag(f"{prefix}.{name.replace('/', '.')}")


def metric_tag(name: str, layer: str = "", prefix: str = PREFIX) -> str:
    """A row's metric name: `<prefix>.<name>/<layer>`, or `<prefix>/<name>` for a global row.

    Args:
        name: The statistic (`grad/norm`); its slashes become dots (`grad.norm`).
        layer: The layer ("" for a global row such as `loss`).
        prefix: What every name starts with.
    """
    if layer:
        return clean_tag(f"{metric_section(name, prefix)}/{layer}")
    return clean_tag(f"{prefix}/{name.replace('/', '.')}")


class StepBuffer:
    """A sink's rows as `{tag: value}` per step, released in step order once complete.

    A step is released once rows of a step more than `lag` steps later have arrived (see the
    module docstring); `pop()` releases the rest. Histogram bins (`act/hist/NN`) are left out.

    Args:
        every: Keep only the steps divisible by this.
        prefix: The prefix of the tags (`metric_tag`).
        lag: How many steps late a step's rows may come; None is `every`.
    """

    def __init__(self, every: int = 1, prefix: str = PREFIX, lag: int | None = None) -> None:
        for name, value in (("every", every), ("lag", every if lag is None else lag)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be an int >= 1, got {value!r}")
        self.every = every
        self.prefix = prefix
        self.lag = every if lag is None else lag
        self._steps: dict[int, dict[str, float]] = {}
        self._newest = -1  # the newest step seen, kept or not

    def add(
        self, step: int, names: Sequence[str], layers: Sequence[str], values: Sequence[float]
    ) -> None:
        """Gather one group of rows (those of a kept step)."""
        self._newest = max(self._newest, step)
        if step % self.every:
            return
        metrics = self._steps.setdefault(step, {})
        for name, layer, value in zip(names, layers, values, strict=True):
            if not name.startswith(HISTOGRAM_PREFIX):
                metrics[metric_tag(name, layer, self.prefix)] = float(value)

    def ready(self) -> list[tuple[int, dict[str, float]]]:
        """Release the complete steps: those more than `lag` steps before the newest seen."""
        return self.pop(before=self._newest - self.lag)

    def pop(self, before: int | None = None) -> list[tuple[int, dict[str, float]]]:
        """Release every gathered step (only those before step `before`, when given)."""
        steps = sorted(s for s in self._steps if before is None or s < before)
        return [(step, self._steps.pop(step)) for step in steps]


class BufferedSink:
    """A sink that hands over each complete step (`StepBuffer`) to `_log`; W&B's and MLflow's
    sinks are this with their own `_log` and a `_buffer` set in `__init__`."""

    _buffer: StepBuffer

    def write(
        self, step: int, names: Sequence[str], layers: Sequence[str], values: Sequence[float]
    ) -> None:
        self._buffer.add(step, names, layers, values)
        self._log(self._buffer.ready())

    def close(self) -> None:
        """Send what is still gathered; the tracker's run stays open (it is the caller's)."""
        self._log(self._buffer.pop())

    def _log(self, steps: list[tuple[int, dict[str, float]]]) -> None:
        raise NotImplementedError
