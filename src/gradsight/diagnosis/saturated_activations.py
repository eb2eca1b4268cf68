"""saturated_activations: sigmoid/tanh units stuck in their flat regions.

Where |x| is large, sigmoid'(x) and tanh'(x) are ~0: a saturated unit passes almost no
gradient back, whatever the error (LeCun et al. 1998). Large inputs or large weights push
units there.
"""

from __future__ import annotations

from gradsight.diagnosis import thresholds as th
from gradsight.diagnosis.finding import Finding, Remedy
from gradsight.diagnosis.metrics import Context, fmt, table
from gradsight.telemetry.history import History


def rule(history: History, context: Context) -> list[Finding]:
    """Median saturated fraction per sigmoid/tanh layer over logged steps."""
    if "act/saturated" not in history:
        return []
    saturated = table(history, "act/saturated").median()
    flagged = saturated[saturated > th.SATURATED_WARNING]
    if flagged.empty:
        return []
    worst = flagged.idxmax()
    severity = "critical" if flagged.max() > th.SATURATED_CRITICAL else "warning"
    return [
        Finding(
            kind="saturated_activations",
            severity=severity,
            summary=(
                f"{len(flagged)} of {len(saturated)} sigmoid/tanh layers have most units in the "
                f"flat region; worst {worst}: {fmt(100 * float(flagged.max()))}% saturated "
                f"(median over logged steps)."
            ),
            explanation=(
                "A saturated sigmoid/tanh unit has a derivative near zero, so it passes "
                "almost no gradient back and its incoming weights stop learning."
            ),
            layers=tuple(flagged.index),
            evidence={"saturated_fraction": {k: float(v) for k, v in saturated.items()}},
            remedies=(
                Remedy("normalize_inputs", "Large inputs drive the first layer into the flats."),
                Remedy("glorot_init", "Scales weights so pre-activations stay near zero."),
                Remedy("batch_norm", "Keeps pre-activations centred with unit spread."),
                Remedy("relu_activation", "ReLU does not saturate for positive inputs."),
            ),
        )
    ]


RULES = (rule,)
