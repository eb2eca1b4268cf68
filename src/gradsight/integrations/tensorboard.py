"""TensorBoard: a History as scalars and histograms, after the run or live.

```python
gs.export.tensorboard("runs/demo", "tb/demo")     # a History or a run directory
# tensorboard --logdir tb
```

Tags (`sinks.metric_tag`, the scheme every tracker shares): a layer's row of statistic
`name` becomes the scalar `gradsight.<name>/<layer>` (slashes of the name turned into dots,
`gradsight.grad.norm/encoder.0`), a global row `gradsight/<name>` (`gradsight/loss`), so the
Scalars dashboard has one section per statistic with its layers and one section of global
rows; characters TensorBoard does not allow (the brackets of `hidden_tap[3]`) become `_`.
The Custom Scalars dashboard gets one multi-line chart per statistic that has layers, all
its layers overlaid (`custom_scalars_layout`), grouped by family (`gradsight.grad`,
`gradsight.act`, ...). The `act/hist/NN` rows of a layer (`watch(..., histograms=True)`: the
fraction of its values in each of HISTOGRAM_BINS fixed bins) become one histogram
`gradsight.act.hist/<layer>` per step, written with the bin edges the watch used
(`telemetry/stats.py`: HISTOGRAM_RANGES per activation kind, else DEFAULT_HISTOGRAM_RANGE).

The History does not store a layer's kind, so the range is found this way: from `model` (or
`kinds`) when given; otherwise a layer with `act/saturated` rows is of a saturating kind
(sigmoid, centred sigmoid, tanh), whose ranges differ and cannot be told apart, so its
histogram is skipped with a warning; any other layer used DEFAULT_HISTOGRAM_RANGE.

Histogram counts are the bin fractions (the History keeps fractions, not counts), so each
histogram has num = 1; its sum and sum of squares are those of the bin centres, its min and
max the outer edges of the first and last non-empty bins.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from torch import nn

from gradsight.errors import InputError, MissingPackageError
from gradsight.integrations.sinks import HISTOGRAM_PREFIX, PREFIX, metric_section, metric_tag
from gradsight.telemetry.history import History
from gradsight.telemetry.layers import unwrap, watched_modules
from gradsight.telemetry.stats import (
    DEFAULT_HISTOGRAM_RANGE,
    HISTOGRAM_BINS,
    HISTOGRAM_RANGES,
)


def custom_scalars_layout(names: Iterable[str], prefix: str = PREFIX) -> dict:
    """The Custom Scalars layout: a "Multiline" chart per statistic overlaying its layers.

    Args:
        names: The statistics that have per-layer rows (`grad/norm`, `act/std`, ...).
        prefix: The prefix of the tags (`metric_tag`).

    Returns:
        `{category: {title: ["Multiline", [regex]]}}` for `SummaryWriter.add_custom_scalars`:
        one category per family (the name before its first "/"), one chart per statistic
        whose regex matches its layers' tags and its global row, if any.
    """
    layout: dict[str, dict[str, list]] = {}
    for name in sorted(names):
        tags = (re.escape(metric_tag(name, prefix=prefix)), re.escape(metric_section(name, prefix)))
        chart = ["Multiline", [f"^({tags[0]}|{tags[1]}/.*)$"]]
        layout.setdefault(metric_section(name.split("/")[0], prefix), {})[name] = chart
    return layout


def histogram_edges(kind: str | None) -> np.ndarray:
    """The HISTOGRAM_BINS + 1 bin edges the watch used for a layer of this kind."""
    low, high = HISTOGRAM_RANGES.get(kind, DEFAULT_HISTOGRAM_RANGE)
    return np.linspace(low, high, HISTOGRAM_BINS + 1)


def layer_kinds(model: nn.Module) -> dict[str, str]:
    """`{layer: kind}` of the modules a watch on `model` reads activations from."""
    return {m.name: m.kind for m in watched_modules(unwrap(model))}


def tensorboard_sink(logdir: str | Path, model: nn.Module) -> TensorBoardSink:
    """The sink `gs.watch(tensorboard_dir=...)` opens (the `tensorboard` entry point of the
    `gradsight.sinks` group): a TensorBoardSink with `model`'s layer kinds."""
    return TensorBoardSink(logdir, layer_kinds(model))


class TensorBoardSink:
    """Writes rows to TensorBoard event files as they are logged (a `Sink`).

    The Custom Scalars layout (`custom_scalars_layout`) is written again when a step begins
    after new statistics appeared, and at close; TensorBoard shows the latest one.

    Args:
        logdir: The folder for the event files (created if missing).
        kinds: `{layer: kind}` (see `layer_kinds`), to place the histograms of sigmoid and
            tanh layers; without it their histograms are skipped (see the module docstring).
    """

    def __init__(self, logdir: str | Path, kinds: Mapping[str, str] | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:  # torch's writer needs the tensorboard package
            raise MissingPackageError(
                "TensorBoard export needs the tensorboard package: "
                "pip install 'gradsight[tensorboard]'"
            ) from error
        self.logdir = Path(logdir)
        self.writer = SummaryWriter(str(self.logdir))
        self.kinds = dict(kinds or {})
        self.skipped: set[str] = set()  # layers whose histograms could not be placed
        self._saturating: set[str] = set()  # layers seen with act/saturated rows
        self._layered: set[str] = set()  # statistics seen with per-layer rows
        self._charted: set[str] = set()  # the statistics of the layout last written
        self._step = -1  # the newest step seen

    def write(
        self, step: int, names: Sequence[str], layers: Sequence[str], values: Sequence[float]
    ) -> None:
        """Write one group of rows: scalars now, each layer's histogram bins as one histogram."""
        if step > self._step:  # the statistics of the earlier steps are known by now
            self._step = step
            self._write_layout()
        bins: dict[str, np.ndarray] = {}
        for name, layer, value in zip(names, layers, values, strict=True):
            if name.startswith(HISTOGRAM_PREFIX):
                fractions = bins.setdefault(layer, np.zeros(HISTOGRAM_BINS))
                fractions[int(name.removeprefix(HISTOGRAM_PREFIX))] = value
                continue
            if name == "act/saturated":
                self._saturating.add(layer)
            self.writer.add_scalar(metric_tag(name, layer), float(value), step)
            if layer:
                self._layered.add(name)
        for layer, fractions in bins.items():
            self._write_histogram(step, layer, fractions)

    def _edges(self, layer: str) -> np.ndarray | None:
        if layer in self.kinds:
            return histogram_edges(self.kinds[layer])
        if layer in self._saturating:
            if layer not in self.skipped:
                self.skipped.add(layer)
                warnings.warn(
                    f"gradsight tensorboard: no histograms for layer {layer!r}: a sigmoid or "
                    "tanh-like layer whose kind is unknown, and the bin range depends on it "
                    "(pass model= or kinds=)",
                    RuntimeWarning,
                    stacklevel=4,
                )
            return None
        return histogram_edges(None)

    def _write_histogram(self, step: int, layer: str, fractions: np.ndarray) -> None:
        edges = self._edges(layer)
        filled = np.flatnonzero(fractions > 0)
        if edges is None or filled.size == 0:
            return
        centres = (edges[:-1] + edges[1:]) / 2
        self.writer.add_histogram_raw(
            metric_tag("act/hist", layer),
            min=float(edges[filled[0]]),
            max=float(edges[filled[-1] + 1]),
            num=float(fractions.sum()),
            sum=float(fractions @ centres),
            sum_squares=float(fractions @ centres**2),
            bucket_limits=edges[1:].tolist(),  # each bin's right edge
            bucket_counts=fractions.tolist(),
            global_step=step,
        )

    def _write_layout(self) -> None:
        if self._layered != self._charted:
            self.writer.add_custom_scalars(custom_scalars_layout(self._layered))
            self._charted = set(self._layered)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self._write_layout()
        self.writer.close()


def tensorboard(
    history: History | str | Path,
    logdir: str | Path,
    *,
    model: nn.Module | None = None,
    kinds: Mapping[str, str] | None = None,
) -> Path:
    """Write a run's metrics as TensorBoard event files (see the module docstring for tags).

    Args:
        history: A History, or a run directory (or its `metrics/` folder).
        logdir: Folder for the event files; `tensorboard --logdir` it.
        model: The watched model, to place the histograms of sigmoid and tanh layers.
        kinds: `{layer: kind}` instead of `model`.

    Returns:
        `logdir`.
    """
    if model is not None and kinds is not None:
        raise InputError("give model or kinds, not both")
    if not isinstance(history, History):
        history = History.load(history)
    if model is not None:
        kinds = layer_kinds(model)
    frame = history.frame()
    sink = TensorBoardSink(logdir, kinds)
    try:
        # One group per step: a layer's act/saturated row comes with its histogram bins.
        for step, rows in frame.groupby("step", sort=True):
            sink.write(
                int(step), rows["name"].tolist(), rows["layer"].tolist(), rows["value"].tolist()
            )
    finally:
        sink.close()
    return Path(logdir)
