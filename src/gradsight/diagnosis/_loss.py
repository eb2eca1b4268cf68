"""Readers of the loss curve shared by the rules: its chance level, its spikes, whether it
diverged or gave back what it had learned.

Chance level: a classifier that predicts the uniform distribution over C classes has
cross-entropy log C, whatever the inputs; a run that ends there learned nothing, and one that
ends above it does worse than guessing.

Spikes are judged robustly (Hampel's identifier: Hampel 1974; Rousseeuw & Croux 1993): each
step's loss against the median of the steps before it, in units of their median absolute
deviation (scaled by 1.4826, so that it estimates the standard deviation of Gaussian noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gradsight.diagnosis import thresholds as th
from gradsight.diagnosis.metrics import Context, loss_ends
from gradsight.telemetry.history import History

# 1.4826 * MAD estimates the standard deviation of normally distributed values.
MAD_TO_STD = 1.4826


def finite_loss(history: History) -> pd.Series:
    """The logged loss, indexed by step, non-finite values left out."""
    loss = history.series("loss")
    return loss[np.isfinite(loss.to_numpy())]


def chance_loss(history: History, context: Context) -> float | None:
    """The loss of the uniform guess, log(classes), when the loss is a cross-entropy over known
    classes; None otherwise.

    With a task: its number of classes when its loss is cross-entropy. Without one: the
    metric `out/classes` (the size of the model output's last dimension), believed only when
    the first logged loss is within `CHANCE_START_TOLERANCE` of log(classes), as a freshly
    initialised classifier's cross-entropy is.
    """
    task = context.task
    if task is not None:
        if task.loss == "cross_entropy" and task.output_size >= 2:
            return math.log(task.output_size)
        return None
    found = output_entropy_and_first_loss(history)
    if found is None:
        return None
    chance, first = found
    return chance if abs(first - chance) <= th.CHANCE_START_TOLERANCE * chance else None


def output_entropy_and_first_loss(history: History) -> tuple[float, float] | None:
    """(log of `out/classes`, the first finite loss), or None when either is unknown."""
    if not ("out/classes" in history and "loss" in history):
        return None
    classes = history.series("out/classes").to_numpy()
    classes = classes[np.isfinite(classes)]
    loss = finite_loss(history)
    if not classes.size or classes.max() < 2 or loss.empty:
        return None
    return math.log(float(classes.max())), float(loss.iloc[0])


def smoothed(loss: pd.Series) -> np.ndarray:
    """Centred rolling median of the loss over `LOSS_WINDOW` of the run (at least 3 steps)."""
    window = max(3, int(len(loss) * th.LOSS_WINDOW))
    return loss.rolling(window, center=True, min_periods=1).median().to_numpy()


@dataclass(frozen=True)
class Regression:
    """A stretch where the smoothed loss stayed well above the best it had reached.

    Attributes:
        best: The best smoothed loss before it, at `best_step`.
        worst: The highest smoothed loss during it.
        step: Its first step; `span` its length in logged steps.
        ongoing: Whether it lasts to the end of the run.
    """

    best: float
    best_step: int
    worst: float
    step: int
    span: int
    ongoing: bool


def regression(loss: pd.Series) -> Regression | None:
    """The longest stretch of at least `REGRESSION_SPAN` of the run where the smoothed loss
    (`smoothed`) stays above its running minimum by more than `REGRESSION_LEVEL` of that
    minimum and `REGRESSION_PROGRESS` of the progress made from the start to it; None when
    there is none (a healthy loss never gives back what it gained for that long)."""
    curve = smoothed(loss)
    n = len(curve)
    if n < 3 or not np.isfinite(curve).all():
        return None
    lowest = np.minimum.accumulate(curve)
    progress = np.maximum(curve[0] - lowest, 0.0)
    bar = np.maximum(th.REGRESSION_LEVEL * np.abs(lowest), th.REGRESSION_PROGRESS * progress)
    above = (curve - lowest) > bar
    longest, begin, current = 0, 0, 0
    for i, flag in enumerate(above):
        current = current + 1 if flag else 0
        if current > longest:
            longest, begin = current, i - current + 1
    if longest < max(2, th.REGRESSION_SPAN * n):
        return None
    stretch = slice(begin, begin + longest)
    best = int(np.flatnonzero(curve[: begin + 1] == lowest[begin])[0])
    steps = loss.index.to_numpy()
    return Regression(
        best=float(lowest[begin]),
        best_step=int(steps[best]),
        worst=float(curve[stretch].max()),
        step=int(steps[begin]),
        span=longest,
        ongoing=begin + longest == n,
    )


@dataclass(frozen=True)
class LossCurve:
    """The shape of a run's loss.

    Attributes:
        start: Mean of the first `LOSS_WINDOW` of steps (finite values).
        end: Mean of the last `LOSS_WINDOW` of steps (inf when they are all non-finite).
        end_median: Median of the last `LOSS_WINDOW` of steps (robust to a late spike).
        best: Lowest value of the smoothed loss (`smoothed`), and `best_step` its step.
        steps: Logged loss values.
        chance: The uniform guess's loss (`chance_loss`), or None.
        regression: The loss gave back its progress for a while (`regression`), or None.
    """

    start: float
    end: float
    end_median: float
    best: float
    best_step: int
    steps: int
    chance: float | None
    regression: Regression | None = None

    @property
    def at_chance(self) -> bool:
        """Whether the run ends at or above the uniform guess (within `CHANCE_MARGIN`)."""
        return self.chance is not None and self.end_median >= (1 - th.CHANCE_MARGIN) * self.chance

    @property
    def regressed(self) -> bool:
        """Whether the loss gave back a real part of its progress for a while."""
        return self.regression is not None


def loss_curve(history: History, context: Context) -> LossCurve | None:
    """The `LossCurve` of the run; None without a finite loss."""
    if "loss" not in history:
        return None
    loss = finite_loss(history)
    if loss.empty:
        return None
    start, end, steps = loss_ends(history)
    window = max(1, int(steps * th.LOSS_WINDOW))
    tail = history.series("loss").to_numpy()[-window:]
    tail = tail[np.isfinite(tail)]
    curve = smoothed(loss)
    best = int(np.argmin(curve))
    return LossCurve(
        start=start,
        end=end,
        end_median=float(np.median(tail)) if tail.size else math.inf,
        best=float(curve[best]),
        best_step=int(loss.index[best]),
        steps=steps,
        chance=chance_loss(history, context),
        regression=regression(loss),
    )


def divergence(curve: LossCurve | None) -> str | None:
    """Why the loss diverged without becoming NaN, in words, or None.

    Diverged: it ends `LOSS_RISE_FACTOR` times above its start, or, with a known chance
    level, it had beaten the uniform guess clearly and ends clearly above it (both by
    `CHANCE_MARGIN`): training undid what it had learned.
    """
    if curve is None or not (math.isfinite(curve.start) and curve.start > 0):
        return None
    if not math.isfinite(curve.end) or curve.end > th.LOSS_RISE_FACTOR * curve.start:
        return f"the loss rose from {curve.start:.3g} to {curve.end:.3g}"
    chance = curve.chance
    if (
        chance is not None
        and curve.best < (1 - th.CHANCE_MARGIN) * chance
        and curve.end_median > (1 + th.CHANCE_MARGIN) * chance
    ):
        return (
            f"the loss fell to {curve.best:.3g} (step {curve.best_step}), then rose to "
            f"{curve.end_median:.3g}, above the uniform guess log(C) = {chance:.3g}"
        )
    return None


def gradient_growth(history: History) -> float | None:
    """How many times the global gradient norm grew: median of the last `LOSS_WINDOW` of its
    logged steps over the median of the first; None when it was not logged or started at 0."""
    if "grad/norm_global" not in history:
        return None
    norms = history.series("grad/norm_global").to_numpy()
    norms = norms[np.isfinite(norms)]
    if norms.size < 4:
        return None
    window = max(1, int(norms.size * th.LOSS_WINDOW))
    first, last = float(np.median(norms[:window])), float(np.median(norms[-window:]))
    return last / first if first > 0 else None


@dataclass(frozen=True)
class Spike:
    """A sudden jump of the loss.

    Attributes:
        step: The first step of the jump.
        peak: The highest loss of the jump, at `peak_step`.
        reference: Median loss of the steps before it.
        spread: Their robust spread, 1.4826 * MAD.
        recovered_step: The first step at which the loss was back under the spike bar
            (None: it never came back).
        after: Logged steps from its first step to the end of the run.
    """

    step: int
    peak: float
    peak_step: int
    reference: float
    spread: float
    recovered_step: int | None
    after: int = 0

    @property
    def relative_jump(self) -> float:
        """(peak - reference) / |reference|."""
        return (self.peak - self.reference) / max(abs(self.reference), 1e-12)

    @property
    def spreads(self) -> float:
        """(peak - reference) in units of the spread (inf for a perfectly flat reference)."""
        return (self.peak - self.reference) / self.spread if self.spread > 0 else math.inf

    @property
    def recovered(self) -> bool:
        """Whether the loss came back under the spike bar before the run ended."""
        return self.recovered_step is not None

    @property
    def stalled(self) -> bool:
        """Whether the loss never came back although `SPIKE_WINDOW` logged steps followed
        (a spike in the last steps has had no time to recover: not stalled)."""
        return self.recovered_step is None and self.after >= th.SPIKE_WINDOW


def _references(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and robust spread (1.4826 * MAD) of the up to `SPIKE_WINDOW` values before each
    index (index 0 has none: NaN)."""
    n, window = len(values), th.SPIKE_WINDOW
    reference, spread = np.full(n, np.nan), np.full(n, np.nan)
    for i in range(1, min(window, n)):
        before = values[:i]
        reference[i] = np.median(before)
        spread[i] = np.median(np.abs(before - reference[i]))
    if n > window:
        windows = np.lib.stride_tricks.sliding_window_view(values[:-1], window)
        medians = np.median(windows, axis=1)
        reference[window:] = medians
        spread[window:] = np.median(np.abs(windows - medians[:, None]), axis=1)
    return reference, MAD_TO_STD * spread


def spikes(history: History) -> list[Spike]:
    """Loss spikes: steps where the loss jumps above the median of the `SPIKE_WINDOW` steps
    before it by `SPIKE_SPREADS` of their robust spread, by `SPIKE_RELATIVE` of that median,
    and by `SPIKE_START_FRACTION` of the first loss, in at least two of three consecutive
    logged steps (one unlucky batch is not a spike; a damaged model stays worse for a few
    steps), or in one step by more than `SPIKE_SINGLE_START_FRACTION` of the first loss.

    A spike lasts until the median of three consecutive steps is back under its bar; the
    steps within it belong to it.
    """
    if "loss" not in history:
        return []
    loss = finite_loss(history)
    values, steps = loss.to_numpy(dtype=float), loss.index.to_numpy()
    n = len(values)
    if n < th.SPIKE_MIN_STEPS:
        return []
    reference, spread = _references(values)
    floor = th.SPIKE_START_FRACTION * abs(values[0])
    jump = np.maximum(th.SPIKE_SPREADS * spread, th.SPIKE_RELATIVE * np.abs(reference))
    bars = reference + np.maximum(jump, floor)
    above = np.zeros(n, dtype=bool)
    above[1:] = values[1:] > bars[1:]
    following = np.zeros(n, dtype=int)  # how many of the next two steps pass the same bar
    for shift in (1, 2):
        following[:-shift] += values[shift:] > bars[:-shift]
    found: list[Spike] = []
    end = 0
    single = values - reference > th.SPIKE_SINGLE_START_FRACTION * abs(values[0])
    for i in np.flatnonzero(above & ((following >= 1) | single)):
        if i < end:
            continue
        j = i + 1
        while j < n and np.median(values[j : j + 3]) > bars[i]:
            j += 1
        peak = i + int(np.argmax(values[i:j]))
        found.append(
            Spike(
                step=int(steps[i]),
                peak=float(values[peak]),
                peak_step=int(steps[peak]),
                reference=float(reference[i]),
                spread=float(spread[i]),
                recovered_step=int(steps[j]) if j < n else None,
                after=n - i,
            )
        )
        end = j + 1
    return found


def first_jumping_layer(history: History, step: int) -> tuple[str, float] | None:
    """The layer whose gradient norm (`grad/norm`) jumped first, and most, at or just before
    `step` (within `SPIKE_GRAD_LOOKBACK` steps), with its jump factor over its median of the
    `SPIKE_WINDOW` logged steps before; None without per-layer gradient norms.

    A layer "jumps" when its norm rises above its median by `SPIKE_SPREADS` robust spreads
    and by `SPIKE_RELATIVE` of the median; when none does, the layer with the largest factor
    is named. For a spike in the first steps the first logged step is the reference.
    """
    if "grad/norm" not in history:
        return None
    norms = history.table("grad/norm").sort_index()
    norms = norms.replace([np.inf, -np.inf], np.nan)
    near = norms[(norms.index >= step - th.SPIKE_GRAD_LOOKBACK) & (norms.index <= step)]
    before = norms[norms.index < step - th.SPIKE_GRAD_LOOKBACK].tail(th.SPIKE_WINDOW)
    if before.empty:  # a spike in the first steps: measured against the first logged step
        before, near = norms.iloc[:1], near[near.index > norms.index[0]]
    if near.empty:
        return None
    reference = before.median()
    spread = MAD_TO_STD * (before - reference).abs().median()
    bars = reference + np.maximum(th.SPIKE_SPREADS * spread, th.SPIKE_RELATIVE * reference)
    factors = near / reference.where(reference > 0)
    for step_now in near.index:  # earliest step first
        jumped = near.loc[step_now][near.loc[step_now] > bars].index
        ratio = factors.loc[step_now, jumped].dropna()
        if len(ratio):
            return str(ratio.idxmax()), float(ratio.max())
    largest = factors.max().dropna()
    if largest.empty:
        return None
    return str(largest.idxmax()), float(largest.max())
