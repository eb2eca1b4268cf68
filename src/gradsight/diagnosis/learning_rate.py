"""learning_rate_too_high and learning_rate_too_low: the step size against the landscape.

Gradient descent on a quadratic with curvature lambda is stable only for lr < 2 / lambda
(beyond, each step overshoots and the loss grows); far below 1 / lambda it crawls. Update
ratios |dw| / |w| near 1e-3 are the practical sign of a good rate (Karpathy, CS231n).
"""

from __future__ import annotations

import math

import numpy as np

from gradsight.diagnosis import thresholds as th
from gradsight.diagnosis._metrics import Context, fmt, has, loss_ends, table
from gradsight.diagnosis.finding import Finding, Remedy
from gradsight.telemetry.history import History


def _update_ratio(history: History) -> float | None:
    """The largest per-layer median update ratio (None when updates were not recorded),
    over layers whose weights are not near zero."""
    if not has(history, "update/ratio"):
        return None
    medians = table(history, "update/ratio").median().replace([np.inf, -np.inf], np.nan)
    if has(history, "weight/norm"):  # a ratio to a near-zero weight says nothing of the rate
        weights = table(history, "weight/norm").median()
        medians = medians[weights.reindex(medians.index) > th.RATIO_MIN_WEIGHT_NORM]
    medians = medians.dropna()
    return float(medians.max()) if len(medians) else None


def _sharpness(history: History) -> float | None:
    """The largest lr * lambda_max over steps where both were logged (None without curvature).

    Gradient descent is stable along the sharpest direction only while lr * lambda_max < 2;
    training at the "edge of stability" hovers there (Cohen et al. 2021).
    """
    if not (has(history, "curv/lambda_max") and has(history, "lr")):
        return None
    sharp = history.series("curv/lambda_max")
    lr = history.series("lr")
    steps = sharp.index.intersection(lr.index)
    return float((sharp[steps] * lr[steps]).max()) if len(steps) else None


def too_high(history: History, context: Context) -> list[Finding]:
    """The loss rose or diverged, updates rewrite the weights each step, or lr * lambda_max > 2."""
    if not has(history, "loss"):
        return []
    start, end, _ = loss_ends(history)
    ratio = _update_ratio(history)
    sharpness = _sharpness(history)
    loss = history.series("loss")
    diverged = not np.isfinite(loss.to_numpy()).all()
    rose = math.isfinite(start) and (not math.isfinite(end) or end > th.LOSS_RISE_FACTOR * start)
    large = ratio is not None and ratio > th.UPDATE_RATIO_HIGH
    unstable = sharpness is not None and sharpness > th.STABILITY_LIMIT
    if not (diverged or rose or large or unstable):
        return []
    reasons = []
    if diverged:
        reasons.append(
            f"the loss became non-finite at step {int(loss[~np.isfinite(loss)].index[0])}"
        )
    elif rose:
        reasons.append(f"the loss rose from {fmt(start)} to {fmt(end)}")
    if large:
        reasons.append(
            f"updates change the weights by {fmt(100 * ratio)}% per step (healthy: about 0.1%)"
        )
    return [
        Finding(
            kind="learning_rate_too_high",
            severity="critical" if diverged or rose else "warning",
            summary="The learning rate is too high: " + "; ".join(reasons) + ".",
            explanation=(
                "A step larger than about 2 / (the loss's sharpest curvature) overshoots the "
                "minimum along that direction, so the loss oscillates and grows."
            ),
            evidence={
                "loss_start": start,
                "loss_end": end,
                "max_median_update_ratio": ratio,
                "diverged": diverged,
                "max_lr_times_lambda_max": sharpness,
            },
            remedies=(
                Remedy("lower_learning_rate", "Try a tenth of the current rate."),
                Remedy("lr_range_test", "Find the largest rate that still decreases the loss."),
                Remedy("gradient_clipping", "Bounds the step when gradients are large."),
            ),
        )
    ]


def too_low(history: History, context: Context) -> list[Finding]:
    """Every layer's updates are tiny and the loss barely moves."""
    if not has(history, "loss"):
        return []
    ratio = _update_ratio(history)
    start, end, _ = loss_ends(history)
    if ratio is None or ratio >= th.UPDATE_RATIO_LOW or not (math.isfinite(start) and start > 0):
        return []
    decrease = (start - end) / start
    if decrease > th.FLAT_LOSS_RELATIVE:
        return []
    return [
        Finding(
            kind="learning_rate_too_low",
            severity="warning",
            summary=(
                f"The learning rate is too low: no layer's weights change by more than "
                f"{fmt(ratio)} of their norm per step (healthy: about 1e-3), and the loss fell "
                f"by only {fmt(100 * decrease)}% ({fmt(start)} to {fmt(end)})."
            ),
            explanation=(
                "Far below 1 / (curvature), each step covers a negligible part of the way to "
                "the minimum: training would need orders of magnitude more steps."
            ),
            evidence={"max_median_update_ratio": ratio, "loss_start": start, "loss_end": end},
            remedies=(
                Remedy("raise_learning_rate", "Try ten times the current rate."),
                Remedy("lr_range_test", "Measure the range where the loss falls fastest."),
                Remedy("adaptive_optimizer", "Adam's steps do not scale with the gradient's size."),
            ),
        )
    ]


RULES = (too_high, too_low)
