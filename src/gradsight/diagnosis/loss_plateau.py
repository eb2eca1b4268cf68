"""loss_plateau: the loss stopped moving while still high.

Plateaus and saddle regions are where the gradient is small in every direction that lowers
the loss: plain gradient descent crawls across them (Dauphin et al. 2014); momentum and
adaptive steps cross them.
"""

from __future__ import annotations

import math

import numpy as np

from gradsight.diagnosis import thresholds as th
from gradsight.diagnosis._metrics import Context, fmt, has, loss_ends
from gradsight.diagnosis.finding import Finding, Remedy
from gradsight.telemetry.history import History


def rule(history: History, context: Context) -> list[Finding]:
    """Over the last half the smoothed loss moved little, and it is still near its start."""
    if not has(history, "loss"):
        return []
    loss = history.series("loss").to_numpy()
    if len(loss) < 20 or not np.isfinite(loss).all():
        return []
    start, end, steps = loss_ends(history)
    half = loss[len(loss) // 2 :]
    window = max(1, int(len(half) * th.LOSS_WINDOW))
    middle = float(half[:window].mean())
    change = abs(middle - end) / max(abs(middle), 1e-12)
    if not (math.isfinite(start) and start > 0):
        return []
    if change >= th.PLATEAU_RELATIVE_CHANGE or end < th.PLATEAU_STILL_HIGH * start:
        return []
    return [
        Finding(
            kind="loss_plateau",
            severity="warning",
            summary=(
                f"The loss is stuck: {fmt(end)} at the end, {fmt(100 * end / start)}% of its start "
                f"({fmt(start)}), and it moved {fmt(100 * change)}% over the last half of "
                f"{steps} steps."
            ),
            explanation=(
                "The gradient is too small in every direction that lowers the loss: a plateau "
                "(often vanishing gradients or saturated units) or a saddle region."
            ),
            steps=(steps // 2, steps - 1),
            evidence={
                "loss_start": start,
                "loss_mid": middle,
                "loss_end": end,
                "relative_change_last_half": change,
            },
            remedies=(
                Remedy("momentum", "Accumulated velocity carries the weights across flat regions."),
                Remedy("adaptive_optimizer", "Rescales tiny gradients to useful steps."),
                Remedy("raise_learning_rate", "Larger steps on a flat surface."),
            ),
        )
    ]


RULES = (rule,)
