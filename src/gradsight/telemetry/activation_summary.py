"""Activation statistics of one logged step, computed on the host for all modules at once.

The device sends, for every call of a watched output in the step (`stats.reduce_output`):
its sum of squares, its saturated or non-positive count, its per-unit sums and, for the ReLU
family, its per-unit maxima. `HostCalls` holds them as concatenated arrays, and
`summarize` derives every module's statistics with a few vectorised numpy operations
(segment sums over the concatenation), in float64. The calls of one module in one step
(micro-batches, a block reused, a cell applied over time) are combined first.

Statistics, per module:
- `act/mean` = sum / n; `act/std` = sqrt(sum_sq / n - mean^2) (population std);
- `act/saturated`: fraction of values in the flat region (`stats.SATURATING_KINDS`);
- `act/dead`: fraction of ReLU-family units whose output was <= 0 for every example;
- `act/zero_frac`: fraction of ReLU-family values <= 0;
- `act/drift`: mean over units of |mu_u - mu_u_prev| / std: the shift of each unit's mean
  since the module's last logged step, in units of its spread (the measurable face of
  internal covariate shift, Ioffe & Szegedy 2015); only with a previous step of equal units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gradsight.telemetry.stats import HISTOGRAM_BINS, SATURATING_KINDS

HISTOGRAM_NAMES = [f"act/hist/{i:02d}" for i in range(HISTOGRAM_BINS)]

# Rows of one step as `History.log_rows` takes them: (names, layers, values).
Rows = list[tuple[list[str], list[str], list[float]]]


@dataclass
class HostCalls:
    """The host values of the calls of one or more steps, in call order.

    Attributes:
        names: The measured output's name, per call.
        kinds: Its activation kind, per call.
        counts: Number of values, per call (over all processes).
        squares: Sum of squares of the values, per call.
        counted: The saturated (saturating kinds) or non-positive (ReLU family) count, per
            call; NaN for the other kinds.
        units: Per-unit sums of every call, concatenated.
        sizes: Number of units, per call.
        maxima: Per-unit maxima of the ReLU-family calls, concatenated (in call order).
        histograms: Bin counts per call (None without histograms).
    """

    names: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    counts: list[float] = field(default_factory=list)
    squares: list[np.ndarray] = field(default_factory=list)
    counted: list[np.ndarray] = field(default_factory=list)
    units: list[np.ndarray] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    maxima: list[np.ndarray] = field(default_factory=list)
    histograms: list[np.ndarray] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.names)


@dataclass
class _Modules:
    """The step's calls combined per module (one entry per name, in first-call order)."""

    names: list[str]
    kinds: list[str]
    counts: np.ndarray
    squares: np.ndarray
    totals: np.ndarray  # sum of all values
    counted: np.ndarray
    units: np.ndarray  # per-unit sums, concatenated
    sizes: np.ndarray
    rows: np.ndarray  # values per unit
    maxima: dict[str, np.ndarray]
    histograms: dict[str, np.ndarray]


def _segment_sums(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Sums of consecutive segments of the given sizes (each >= 1)."""
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    return np.add.reduceat(values, starts) if len(sizes) else np.zeros(0)


def _combine(calls: HostCalls) -> _Modules:
    """One entry per module. Unit vectors of a module's calls are added when they have the
    units of its first call (a call over other units adds to the totals only)."""
    sizes = np.asarray(calls.sizes)
    units = np.concatenate(calls.units) if calls.units else np.zeros(0)
    counts = np.asarray(calls.counts, dtype=np.float64)
    squares = np.concatenate(calls.squares)
    counted = np.concatenate(calls.counted)
    totals = _segment_sums(units, sizes)
    relu = [kind == "relu" for kind in calls.kinds]
    maxima = np.concatenate(calls.maxima) if calls.maxima else np.zeros(0)
    if len(set(calls.names)) == len(calls.names):  # the usual step: one call per module
        relu_names = [name for name, is_relu in zip(calls.names, relu, strict=True) if is_relu]
        split = np.split(maxima, np.cumsum(sizes[relu])[:-1]) if relu_names else []
        histograms = dict(zip(calls.names, calls.histograms, strict=False))  # none, or one each
        return _Modules(
            calls.names, calls.kinds, counts, squares, totals, counted, units, sizes,
            counts / sizes, dict(zip(relu_names, split, strict=True)), histograms,
        )  # fmt: skip
    return _combine_repeated(calls, sizes, units, counts, squares, counted, totals, maxima)


def _combine_repeated(calls, sizes, units, counts, squares, counted, totals, maxima) -> _Modules:
    index: dict[str, int] = {}
    unit_parts: list[np.ndarray] = []
    rows: list[float] = []
    kept_maxima: dict[str, np.ndarray] = {}
    kept_histograms: dict[str, np.ndarray] = {}
    ends, relu_end = np.cumsum(sizes), 0
    for i, name in enumerate(calls.names):
        part = units[ends[i] - sizes[i] : ends[i]]
        unit_max = None
        if calls.kinds[i] == "relu":
            unit_max, relu_end = maxima[relu_end : relu_end + sizes[i]], relu_end + sizes[i]
        histogram = calls.histograms[i] if calls.histograms else None
        if name not in index:
            index[name] = len(index)
            unit_parts.append(part.copy())
            rows.append(counts[i] / sizes[i])
            if unit_max is not None:
                kept_maxima[name] = unit_max
        elif len(part) == len(unit_parts[index[name]]):
            unit_parts[index[name]] += part
            rows[index[name]] += counts[i] / sizes[i]
            if unit_max is not None:
                kept_maxima[name] = np.maximum(kept_maxima[name], unit_max)
        if histogram is not None:
            previous = kept_histograms.get(name)
            kept_histograms[name] = histogram if previous is None else previous + histogram
    owner = np.array([index[name] for name in calls.names])
    per_module = len(index)
    kinds = list(dict(zip(calls.names, calls.kinds, strict=True)).values())
    return _Modules(
        list(index), kinds,
        np.bincount(owner, counts, per_module), np.bincount(owner, squares, per_module),
        np.bincount(owner, totals, per_module),
        np.bincount(owner, np.nan_to_num(counted), per_module),
        np.concatenate(unit_parts), np.array([len(p) for p in unit_parts]), np.asarray(rows),
        kept_maxima, kept_histograms,
    )  # fmt: skip


@dataclass
class PreviousMeans:
    """Each module's per-unit means at its last logged step (for `act/drift`): those of the
    last step's modules concatenated, older ones by name."""

    names: list[str] = field(default_factory=list)
    sizes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    means: np.ndarray = field(default_factory=lambda: np.zeros(0))
    older: dict[str, np.ndarray] = field(default_factory=dict)

    def get(self, name: str) -> np.ndarray | None:
        """The module's per-unit means at its last logged step, or None."""
        if name in self.names:
            i = self.names.index(name)
            end = int(np.sum(self.sizes[: i + 1]))
            return self.means[end - self.sizes[i] : end]
        return self.older.get(name)

    def remember(self, names: list[str], sizes: np.ndarray, means: np.ndarray) -> None:
        """Keep this step's means; modules absent from it keep theirs."""
        if names != self.names or not np.array_equal(sizes, self.sizes):
            for name in self.names:
                self.older[name] = self.get(name)
            for name in names:
                self.older.pop(name, None)
        self.names, self.sizes, self.means = names, sizes, means


def _drift(
    modules: _Modules, unit_mean: np.ndarray, std: np.ndarray, previous: PreviousMeans
) -> tuple[list[str], np.ndarray]:
    """(names, act/drift) of the modules with a previous step of equal units."""
    if modules.names == previous.names and np.array_equal(modules.sizes, previous.sizes):
        names = modules.names  # the usual step: the same modules as last time
        shift = _segment_sums(np.abs(unit_mean - previous.means), modules.sizes) / modules.sizes
    else:
        ends = np.cumsum(modules.sizes)
        names, shifts, kept = [], [], []
        for i, name in enumerate(modules.names):
            before = previous.get(name)
            now = unit_mean[ends[i] - modules.sizes[i] : ends[i]]
            if before is not None and before.shape == now.shape:
                names.append(name)
                shifts.append(float(np.mean(np.abs(now - before))))
                kept.append(i)
        shift, std = np.asarray(shifts), std[kept]
    with np.errstate(divide="ignore", invalid="ignore"):
        drift = np.where(std > 0, shift / std, np.where(shift == 0, 0.0, math.inf))
    return names, drift


def summarize(calls: HostCalls, previous: PreviousMeans) -> Rows:
    """Every module's statistics at this step (see the module docstring); updates `previous`."""
    modules = _combine(calls)
    n = np.maximum(modules.counts, 1)
    mean = modules.totals / n
    std = np.sqrt(np.maximum(modules.squares / n - mean**2, 0.0))
    names = modules.names
    rows: Rows = [(["act/mean"] * len(names), names, mean.tolist())]
    rows.append((["act/std"] * len(names), names, std.tolist()))
    saturating = [i for i, kind in enumerate(modules.kinds) if kind in SATURATING_KINDS]
    if saturating:
        fraction = modules.counted[saturating] / n[saturating]
        rows.append((["act/saturated"] * len(saturating), [names[i] for i in saturating],
                     fraction.tolist()))  # fmt: skip
    relu = [i for i, kind in enumerate(modules.kinds) if kind == "relu"]
    if relu:
        relu_names = [names[i] for i in relu]
        dead = [float(np.mean(modules.maxima[name] <= 0)) for name in relu_names]
        rows.append((["act/dead"] * len(relu), relu_names, dead))
        zero_frac = (modules.counted[relu] / n[relu]).tolist()
        rows.append((["act/zero_frac"] * len(relu), relu_names, zero_frac))
    unit_mean = modules.units / np.repeat(np.maximum(modules.rows, 1), modules.sizes)
    drift_names, drift = _drift(modules, unit_mean, std, previous)
    if drift_names:
        rows.append((["act/drift"] * len(drift_names), drift_names, drift.tolist()))
    for name, histogram in modules.histograms.items():
        fractions = (histogram / max(histogram.sum(), 1)).tolist()
        rows.append((HISTOGRAM_NAMES, [name] * HISTOGRAM_BINS, fractions))
    previous.remember(names, modules.sizes, unit_mean)
    return rows
