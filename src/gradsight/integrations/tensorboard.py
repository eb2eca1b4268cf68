"""TensorBoard: a History as scalars and histograms, after the run or live.

```python
gs.export.tensorboard("runs/demo", "tb/demo")     # a History or a run directory
# tensorboard --logdir tb
```

Tags: every row `(step, name, layer, value)` becomes the scalar `gradsight/<name>/<layer>`
(`gradsight/<name>` for global rows such as `loss`); characters TensorBoard does not allow
in a tag (the brackets of `hidden_tap[3]`) become `_`. The `act/hist/NN` rows of a layer
(`watch(..., histograms=True)`: the fraction of its values in each of HISTOGRAM_BINS fixed
bins) become one histogram `gradsight/act/hist/<layer>` per step, written with the bin edges
the watch used (`telemetry/stats.py`: HISTOGRAM_RANGES per activation kind, else
DEFAULT_HISTOGRAM_RANGE).

The History does not store a layer's kind, so the range is found this way: from `model` (or
`kinds`) when given; otherwise a layer with `act/saturated` rows is a sigmoid or a tanh,
whose two ranges differ and cannot be told apart, so its histogram is skipped with a
warning; any other layer used DEFAULT_HISTOGRAM_RANGE.

Histogram counts are the bin fractions (the History keeps fractions, not counts), so each
histogram has num = 1; its sum and sum of squares are those of the bin centres, its min and
max the outer edges of the first and last non-empty bins.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from torch import nn

from gradsight.integrations.sinks import metric_tag
from gradsight.telemetry.history import History
from gradsight.telemetry.layers import unwrap, watched_modules
from gradsight.telemetry.stats import DEFAULT_HISTOGRAM_RANGE, HISTOGRAM_BINS, HISTOGRAM_RANGES

HISTOGRAM_PREFIX = "act/hist/"
# The kinds for which ActivationStats.summarize logs `act/saturated`; HISTOGRAM_RANGES has
# entries only for them (a test keeps the two in step), so a layer without that row used the
# default range.
SATURATING_KINDS = ("sigmoid", "tanh")
_ILLEGAL_TAG_CHARACTERS = re.compile(r"[^-/\w.]")  # TensorBoard's own rule for tag names


def clean_tag(tag: str) -> str:
    """`tag` with the characters TensorBoard rejects replaced by `_`."""
    return _ILLEGAL_TAG_CHARACTERS.sub("_", tag)


def histogram_edges(kind: str | None) -> np.ndarray:
    """The HISTOGRAM_BINS + 1 bin edges the watch used for a layer of this kind."""
    low, high = HISTOGRAM_RANGES.get(kind, DEFAULT_HISTOGRAM_RANGE)
    return np.linspace(low, high, HISTOGRAM_BINS + 1)


def layer_kinds(model: nn.Module) -> dict[str, str]:
    """`{layer: kind}` of the modules a watch on `model` reads activations from."""
    return {m.name: m.kind for m in watched_modules(unwrap(model))}


class TensorBoardSink:
    """Writes rows to TensorBoard event files as they are logged (a `Sink`).

    Args:
        logdir: The folder for the event files (created if missing).
        kinds: `{layer: kind}` (see `layer_kinds`), to place the histograms of sigmoid and
            tanh layers; without it their histograms are skipped (see the module docstring).
    """

    def __init__(self, logdir: str | Path, kinds: Mapping[str, str] | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:  # torch's writer needs the tensorboard package
            raise ImportError(
                "TensorBoard export needs the tensorboard package: "
                "pip install 'gradsight[tensorboard]'"
            ) from error
        self.logdir = Path(logdir)
        self.writer = SummaryWriter(str(self.logdir))
        self.kinds = dict(kinds or {})
        self.skipped: set[str] = set()  # layers whose histograms could not be placed
        self._saturating: set[str] = set()  # layers seen with act/saturated rows

    def write(
        self, step: int, names: Sequence[str], layers: Sequence[str], values: Sequence[float]
    ) -> None:
        """Write one group of rows: scalars now, each layer's histogram bins as one histogram."""
        bins: dict[str, np.ndarray] = {}
        for name, layer, value in zip(names, layers, values, strict=True):
            if name.startswith(HISTOGRAM_PREFIX):
                fractions = bins.setdefault(layer, np.zeros(HISTOGRAM_BINS))
                fractions[int(name.removeprefix(HISTOGRAM_PREFIX))] = value
                continue
            if name == "act/saturated":
                self._saturating.add(layer)
            self.writer.add_scalar(clean_tag(metric_tag(name, layer)), float(value), step)
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
                    "tanh layer whose kind is unknown, and the bin range depends on it "
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
            clean_tag(metric_tag("act/hist", layer)),
            min=float(edges[filled[0]]),
            max=float(edges[filled[-1] + 1]),
            num=float(fractions.sum()),
            sum=float(fractions @ centres),
            sum_squares=float(fractions @ centres**2),
            bucket_limits=edges[1:].tolist(),  # each bin's right edge
            bucket_counts=fractions.tolist(),
            global_step=step,
        )

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
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
        raise ValueError("give model or kinds, not both")
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
