"""dead_units: ReLU units that output zero for every example ("dying ReLU").

A ReLU unit whose pre-activation is negative for every input has zero gradient, so nothing
can bring it back: strongly negative biases, a large step, or a bad initialisation kill
units for good (Maas et al. 2013; Lu et al. 2019).
"""

from __future__ import annotations

from gradsight.diagnosis import thresholds as th
from gradsight.diagnosis.finding import Finding, Remedy
from gradsight.diagnosis.metrics import Context, fmt, table
from gradsight.telemetry.history import History


def rule(history: History, context: Context) -> list[Finding]:
    """Median dead fraction per ReLU-family layer over the last half of logged steps."""
    if "act/dead" not in history:
        return []
    dead = table(history, "act/dead", last=0.5).median()
    flagged = dead[dead > th.DEAD_WARNING]
    if flagged.empty:
        return []
    worst = flagged.idxmax()
    severity = "critical" if flagged.max() > th.DEAD_CRITICAL else "warning"
    return [
        Finding(
            kind="dead_units",
            severity=severity,
            summary=(
                f"{len(flagged)} of {len(dead)} ReLU layers have most units dead (zero for every "
                f"example of the batch); worst {worst}: {fmt(100 * float(flagged.max()))}% dead."
            ),
            explanation=(
                "A ReLU unit that is off for every input gets zero gradient, so no update "
                "can revive it: the layer loses that capacity for good."
            ),
            layers=tuple(flagged.index),
            evidence={"dead_fraction": {k: float(v) for k, v in dead.items()}},
            remedies=(
                Remedy("leaky_relu_activation", "A small negative slope keeps gradients flowing."),
                Remedy("he_init", "Zero biases and fan-in scaled weights: half the units on."),
                Remedy("elu_activation", "ELU has no flat zero region."),
                Remedy("batch_norm", "Re-centres pre-activations so units switch on."),
                Remedy("lower_learning_rate", "Large steps can push units off for good."),
            ),
        )
    ]


RULES = (rule,)
