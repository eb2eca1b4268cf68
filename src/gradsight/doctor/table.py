"""The table of trials: one row per remedy, scored against the baseline seed by seed."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from gradsight.data.task import IGNORE_INDEX, Task
from gradsight.doctor.trial import RunResult
from gradsight.stats import bootstrap_ci, mean_spread

# Improvements below this are float32 rounding of the metric (a remedy that only predicts
# the majority class "beats" a diverged baseline by ~1e-9), not a measurement.
MIN_IMPROVEMENT = 1e-6


def null_score(task: Task) -> float:
    """The test metric of a model that learnt nothing: the training split's most frequent
    class (accuracy), or its mean target (mse).

    A diverged run (non-finite loss or metric) is scored with it, so a remedy that trains
    where the baseline blew up counts as an improvement, and one that blows up counts as
    learning nothing rather than as a missing value.
    """
    y_train, y_test = task.y_train, task.y_test
    if task.metric == "accuracy":
        train, test = y_train[y_train != IGNORE_INDEX], y_test[y_test != IGNORE_INDEX]
        if not test.numel() or not train.numel():
            return 0.0
        majority = torch.mode(train.flatten()).values
        return float((test == majority).double().mean())
    return float((y_test.double() - y_train.double().mean(dim=0)).square().mean())


def test_scores(runs: Sequence[RunResult], key: str, null: float) -> np.ndarray:
    """One test metric per seed; `null` where the run diverged."""
    values = [
        null if m["diverged"] or not math.isfinite(m[key]) else float(m[key])
        for m in (r.metrics for r in runs)
    ]
    return np.array(values, dtype=float)


def row(
    name: str, runs: Sequence[RunResult], baseline: Sequence[RunResult], task: Task
) -> pd.Series:
    """One line of the table: means and spreads over seeds, and the paired improvement.

    improvement = mean over seeds s of (metric_s - baseline_s), sign flipped for mse so that
    positive is better, with its 95% percentile bootstrap interval (Efron 1979).
    """
    key = f"test_{task.metric}"
    null = null_score(task)
    test = test_scores(runs, key, null)
    diffs = test - test_scores(baseline, key, null)
    diffs = diffs if task.higher_is_better else -diffs
    low, high = bootstrap_ci(diffs)
    loss = np.array([r.metrics["train_loss"] for r in runs], dtype=float)
    loss_mean, loss_std = _spread(loss)
    flows = np.array([r.flow for r in runs], dtype=float)
    flows = flows[np.isfinite(flows)]
    return pd.Series(
        {
            "remedy": name,
            "train_loss": loss_mean,
            "train_loss_std": loss_std,
            key: float(test.mean()),
            f"{key}_std": mean_spread(test).std,
            "flow_ratio": float(np.median(flows)) if flows.size else math.nan,
            "improvement": float(diffs.mean()),
            "ci_low": low,
            "ci_high": high,
            "diverged": sum(bool(r.metrics["diverged"]) for r in runs),
            "remaining": ", ".join(runs[0].kinds) or "none",
        }
    )


def _spread(values: np.ndarray) -> tuple[float, float]:
    """Mean and std of the finite values (nan, nan when none is)."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return math.nan, math.nan
    spread = mean_spread(finite)
    return spread.mean, spread.std


def ranked(rows: Sequence[pd.Series], columns: Sequence[str]) -> pd.DataFrame:
    """The rows as a table, largest improvement first (ties keep the order tried)."""
    table = pd.DataFrame(list(rows), columns=list(columns))
    if len(table):
        table = table.sort_values("improvement", ascending=False, kind="stable")
    return table.reset_index(drop=True)


def proven(table: pd.DataFrame) -> str | None:
    """The best remedy whose improvement's interval lies above zero (above `MIN_IMPROVEMENT`),
    or None."""
    above = table[table["ci_low"] > MIN_IMPROVEMENT] if len(table) else table
    return None if above.empty else str(above.iloc[0]["remedy"])
