"""loss_plateau: the loss stopped moving while still high, or ends at the uniform guess.

Plateaus and saddle regions are where the gradient is small in every direction that lowers
the loss: plain gradient descent crawls across them (Dauphin et al. 2014); momentum and
adaptive steps cross them.

"Still high" is judged against what the loss could reach: for a cross-entropy over C classes
the uniform guess scores log C, so a loss at or above it means nothing was learned, and a
loss far below it is not stuck but converged. Without a known chance level the loss is
judged against its own start. A flat loss is not a plateau when the run converged (its
gradient all but vanished, or a pretrained model starts far below the uniform guess), and
not when the loss diverged or gave back its progress: that is a learning rate too high
(`learning_rate`), and a loss too flat for tiny steps is a learning rate too low.
"""

from __future__ import annotations

import math

import numpy as np

from gradsight.diagnosis import thresholds as th
from gradsight.diagnosis._loss import (
    divergence,
    loss_curve,
    output_entropy_and_first_loss,
)
from gradsight.diagnosis.finding import Finding, Remedy
from gradsight.diagnosis.learning_rate import too_low_evidence, unstable_loss
from gradsight.diagnosis.metrics import Context, fmt, loss_ends
from gradsight.telemetry.history import History


def gradient_vanished(history: History) -> float | None:
    """The median global gradient norm over the last half of the run as a fraction of the
    largest rolling median (over `LOSS_WINDOW` of the run), when it is below
    `CONVERGED_GRAD_FRACTION`; None otherwise (or without gradient norms)."""
    if "grad/norm_global" not in history:
        return None
    norms = history.series("grad/norm_global")
    norms = norms[np.isfinite(norms.to_numpy())]
    if len(norms) < 10:
        return None
    window = max(3, int(len(norms) * th.LOSS_WINDOW))
    peak = float(norms.rolling(window, min_periods=1).median().max())
    late = float(norms.iloc[len(norms) // 2 :].median())
    if not peak > 0:
        return None
    fraction = late / peak
    return fraction if fraction < th.CONVERGED_GRAD_FRACTION else None


def pretrained_start(history: History) -> float | None:
    """log(classes) when the first loss is far below it (below `1 - CHANCE_START_TOLERANCE`
    of it) with `out/classes` known: as a cross-entropy, a loss that starts there comes from
    a model trained before this run; None otherwise."""
    found = output_entropy_and_first_loss(history)
    if found is None:
        return None
    chance, first = found
    return chance if 0 <= first < (1 - th.CHANCE_START_TOLERANCE) * chance else None


def rule(history: History, context: Context) -> list[Finding]:
    """The smoothed loss moved little over the last half while still high, or it ends at the
    uniform guess; not when it converged, diverged or the rate is too low."""
    if "loss" not in history:
        return []
    loss = history.series("loss").to_numpy()
    if len(loss) < 20 or not np.isfinite(loss).all():
        return []
    curve = loss_curve(history, context)
    start, end, steps = loss_ends(history)
    if curve is None or not (math.isfinite(start) and start > 0):
        return []
    if divergence(curve) or unstable_loss(history, curve) or too_low_evidence(history):
        return []
    half = loss[len(loss) // 2 :]
    window = max(1, int(len(half) * th.LOSS_WINDOW))
    middle = float(half[:window].mean())
    change = abs(middle - end) / max(abs(middle), 1e-12)
    chance = curve.chance
    reference = chance if chance is not None else start
    still_high = end >= th.PLATEAU_STILL_HIGH * reference
    vanished = gradient_vanished(history)
    pretrained = pretrained_start(history) if chance is None else None
    at_chance = curve.at_chance
    stuck = change < th.PLATEAU_RELATIVE_CHANGE and still_high
    if not (at_chance or (stuck and vanished is None and pretrained is None)):
        return []
    where = (
        f"at the uniform guess log(C) = {fmt(chance)}"
        if at_chance
        else f"{fmt(100 * end / reference)}% of "
        + (f"the uniform guess log(C) = {fmt(chance)}" if chance is not None else "its start")
    )
    return [
        Finding(
            kind="loss_plateau",
            severity="warning",
            summary=(
                f"The loss {'is stuck' if stuck else 'ends where guessing would'}: {fmt(end)} "
                f"at the end, {where} (start {fmt(start)}), and it moved {fmt(100 * change)}% "
                f"over the last half of {steps} steps."
            ),
            explanation=(
                "The gradient is too small in every direction that lowers the loss: a plateau "
                "(often vanishing gradients or saturated units) or a saddle region."
                + (
                    " A loss at log(C) is what predicting every class equally likely scores: "
                    "the model has learned nothing from its inputs."
                    if at_chance
                    else ""
                )
            ),
            steps=(steps // 2, steps - 1),
            evidence={
                "loss_start": start,
                "loss_mid": middle,
                "loss_end": end,
                "loss_chance": chance,
                "at_chance": at_chance,
                "relative_change_last_half": change,
            },
            remedies=(
                Remedy("momentum", "Accumulated velocity carries the weights across flat regions."),
                Remedy("adaptive_optimizer", "Rescales tiny gradients to useful steps."),
                Remedy("raise_learning_rate", "Larger steps on a flat surface."),
                Remedy("lr_range_test", "Find the rates at which the loss falls."),
            ),
        )
    ]


RULES = (rule,)
