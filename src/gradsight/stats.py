"""Statistics over seeds, shared by the lab and the doctor: mean and spread, a bootstrap interval.

A claim is measured once per seed (or per draw); these summarise the values so the page
can say "3.1e-08 (1.2e-08 to 5.0e-08 over 3 seeds)" instead of one lucky number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from gradsight.errors import InputError

# Resamples of the percentile bootstrap; 2000 keeps the 2.5% / 97.5% quantiles stable to
# about 1% of the interval's width (Efron & Tibshirani 1993, ch. 13).
BOOTSTRAP_RESAMPLES = 2000


class Spread(NamedTuple):
    """Mean, sample standard deviation (ddof=1; 0 for one value), min, max and count."""

    mean: float
    std: float
    low: float
    high: float
    n: int


def _values(values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise InputError("need at least one value, got none")
    return array


def mean_spread(values: Sequence[float] | np.ndarray) -> Spread:
    """Mean and spread of `values` (one per seed).

    std = sqrt(sum (x_i - mean)^2 / (n - 1)), the unbiased sample variance's root.
    """
    x = _values(values)
    std = float(x.std(ddof=1)) if x.size > 1 else 0.0
    return Spread(float(x.mean()), std, float(x.min()), float(x.max()), int(x.size))


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    seed: int = 0,
    level: float = 0.95,
    statistic=np.mean,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic(values)` (Efron 1979).

    Draws `resamples` samples of len(values) with replacement, computes the statistic of
    each, and returns its (1 - level) / 2 and (1 + level) / 2 quantiles.

    Args:
        values: The measurements (one per seed or draw).
        seed: Seed of numpy's Generator that draws the resamples.
        level: Coverage of the interval, in (0, 1).
        statistic: A numpy reduction taking `axis=`, e.g. np.mean or np.median.
        resamples: How many bootstrap samples.

    Returns:
        (low, high); both equal the value itself when there is only one.
    """
    if not 0.0 < level < 1.0:
        raise InputError(f"level must be in (0, 1), got {level!r}")
    x = _values(values)
    if x.size == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    samples = x[rng.integers(0, x.size, size=(resamples, x.size))]  # (R, n)
    stats = statistic(samples, axis=1)
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1.0 - alpha))


def mean_and_range(grouped, order: Sequence | None = None) -> tuple[pd.Series, list[pd.Series]]:
    """Per group of a pandas SeriesGroupBy: the mean over seeds, and the distances from it to
    the min and the max, as matplotlib's `yerr` wants them (bars spanning the seeds).

    Args:
        grouped: e.g. `frame.groupby("batch")["test_accuracy"]`.
        order: The groups in the order to draw them (default: pandas' group order).
    """
    stats = grouped.agg(["mean", "min", "max"])
    if order is not None:
        stats = stats.reindex(order)
    return stats["mean"], [stats["mean"] - stats["min"], stats["max"] - stats["mean"]]


def values_where(frame: pd.DataFrame, column: str, **where) -> np.ndarray:
    """`column` of the rows of `frame` whose columns equal `where`, in the frame's order.

    With one row per seed and the frame in seed order, two calls give paired values:
    `values_where(f, "acc", rule="lamb") - values_where(f, "acc", rule="adam")` is the
    per-seed gap.

    Args:
        frame: A tidy table (one row per configuration and seed).
        column: The measured column.
        **where: Column name -> the value its rows must have.
    """
    mask = np.ones(len(frame), dtype=bool)
    for key, value in where.items():
        mask &= (frame[key] == value).to_numpy()
    return frame.loc[mask, column].to_numpy(dtype=np.float64)


def spread_where(frame: pd.DataFrame, column: str, **where) -> Spread:
    """`mean_spread` of `column` over the rows matching `where` (the seeds of one configuration).

    Raises:
        InputError: If no row matches.
    """
    return mean_spread(values_where(frame, column, **where))


def t_interval(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean: mean +- t_{n-1, (1 + level) / 2} * s / sqrt(n).

    Exact for normal values (Student 1908), and honest with few seeds: with 2 or 3 values
    a percentile bootstrap is only their range, while t_{1, 0.975} = 12.7 widens the interval
    to what two draws can tell.

    Args:
        values: The measurements (one per seed).
        level: Coverage of the interval, in (0, 1).

    Returns:
        (low, high); both equal the value itself when there is only one, or when all are equal.
    """
    if not 0.0 < level < 1.0:
        raise InputError(f"level must be in (0, 1), got {level!r}")
    from scipy import stats  # imported here: slow to import, and the doctor never needs it

    x = _values(values)
    mean = float(x.mean())
    if x.size == 1 or np.all(x == x[0]):
        return mean, mean
    scale = float(stats.sem(x))
    low, high = stats.t.interval(level, df=x.size - 1, loc=mean, scale=scale)
    return float(low), float(high)


def geometric_mean(values: Sequence[float] | np.ndarray, axis: int | None = None):
    """exp(mean(log x)) over the finite positive values (others ignored), along `axis`.

    The mean for quantities that vary over orders of magnitude (gradient ratios): the
    arithmetic mean of 1e-8 and 1e-2 is 5e-3, their geometric mean 1e-5. NaN where no value
    is finite and positive.

    Args:
        values: The measurements.
        axis: The axis to reduce; None reduces all and returns a float.
    """
    x = np.asarray(values, dtype=np.float64)
    shown = np.isfinite(x) & (x > 0)
    total = np.log(np.where(shown, x, 1.0)).sum(axis=axis)  # log 1 = 0 for the ignored
    count = shown.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.exp(total / count)
    return float(mean) if axis is None else mean
