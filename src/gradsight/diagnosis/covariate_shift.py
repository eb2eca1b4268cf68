"""covariate_shift: layer input distributions keep moving while the net trains.

Every update of the lower layers changes the distribution the upper layers see ("internal
covariate shift", Ioffe & Szegedy 2015); `act/drift` measures it as the shift of each unit's
mean between logged steps, in units of the layer's spread.
"""

from __future__ import annotations

from gradsight.diagnosis import thresholds as th
from gradsight.diagnosis.finding import Finding, Remedy
from gradsight.diagnosis.metrics import Context, fmt, table
from gradsight.telemetry.history import History


def rule(history: History, context: Context) -> list[Finding]:
    """Median act/drift per layer over the last half of logged steps."""
    if "act/drift" not in history:
        return []
    drift = table(history, "act/drift", last=0.5).median().dropna()
    flagged = drift[drift > th.DRIFT_INFO]
    if flagged.empty:
        return []
    return [
        Finding(
            kind="covariate_shift",
            severity="info",
            summary=(
                f"{len(flagged)} layers' output distributions keep moving: their units' means "
                f"shift by up to {fmt(float(flagged.max()))} standard deviations between logged "
                f"steps (layer {flagged.idxmax()})."
            ),
            explanation=(
                "Each layer keeps chasing the changing distribution of its inputs, which "
                "slows training and calls for smaller learning rates."
            ),
            layers=tuple(flagged.index),
            evidence={"drift": {k: float(v) for k, v in drift.items()}},
            remedies=(
                Remedy("batch_norm", "Fixes each layer's input mean and spread."),
                Remedy("lower_learning_rate", "Smaller steps move the distributions less."),
            ),
        )
    ]


RULES = (rule,)
