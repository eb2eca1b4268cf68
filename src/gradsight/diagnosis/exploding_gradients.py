"""exploding_gradients: the gradient grows with depth, or spikes.

Large weights multiply the back-propagated gradient by more than 1 per layer: with N(0, 1)
weights a ReLU layer of fan-in n scales it by ~sqrt(n / 2) (He et al. 2015), and a few such
layers turn steps into leaps (Pascanu et al. 2013).

A loss that diverges without NaN while the gradient norm grows by orders of magnitude, and
the steps gave no sign of a too-high rate, is named here too: the gradients are what grew.
"""

from __future__ import annotations

import numpy as np

from gradsight.diagnosis import thresholds as th
from gradsight.diagnosis._loss import divergence, loss_curve
from gradsight.diagnosis.finding import Finding, Remedy
from gradsight.diagnosis.learning_rate import gradients_diverged
from gradsight.diagnosis.metrics import Context, error_norms, fmt, median_ratio
from gradsight.telemetry.history import History

EXPLANATION = (
    "When weights are large, every layer multiplies the back-propagated gradient by more "
    "than one, so it grows geometrically towards the input; steps then overshoot and "
    "training oscillates or diverges."
)
REMEDIES = (
    Remedy("gradient_clipping", "Caps the step whatever the gradient's size."),
    Remedy("he_init", "Weights scaled to the fan-in keep the gradient's size constant."),
    Remedy("batch_norm", "Normalises each layer, so weight scale no longer compounds."),
    Remedy("lower_learning_rate", "Smaller steps survive large gradients."),
    Remedy("weight_decay", "Keeps the weights from growing."),
)


def rule(history: History, context: Context) -> list[Finding]:
    """Growth towards the input (first/last ratio), spikes of the global norm, or a loss that
    diverged as the gradient norm grew (`learning_rate.gradients_diverged`)."""
    findings = []
    median = None
    if "grad/norm" in history:
        norms, metric, layers = error_norms(history)
        median = median_ratio(norms, layers[0], layers[-1]) if len(layers) >= 3 else None
    if median is not None:
        ratio, count = median
        if ratio > th.EXPLODING_RATIO_WARNING:
            severity = "critical" if ratio > th.EXPLODING_RATIO_CRITICAL else "warning"
            findings.append(
                Finding(
                    kind="exploding_gradients",
                    severity=severity,
                    summary=(
                        f"The back-propagated gradient ({metric}) grows by a factor "
                        f"{fmt(ratio)} from {layers[-1]} to "
                        f"{layers[0]} (median over {count} logged steps)."
                    ),
                    explanation=EXPLANATION,
                    layers=tuple(layers),
                    steps=tuple(int(s) for s in norms.index[:1]),
                    evidence={
                        "first_last_ratio": ratio,
                        "first_layer": layers[0],
                        "last_layer": layers[-1],
                    },
                    remedies=REMEDIES,
                )
            )
    glob = history.series("grad/norm_global") if "grad/norm_global" in history else None
    if glob is not None and len(glob) >= 10:
        finite = glob[np.isfinite(glob)]
        median = float(finite.median()) if len(finite) else 0.0
        if median > 0 and float(finite.max()) > th.EXPLODING_SPIKE_FACTOR * median:
            step = int(finite.idxmax())
            findings.append(
                Finding(
                    kind="exploding_gradients",
                    severity="warning",
                    summary=(
                        f"The global gradient norm spikes to {fmt(float(finite.max()))} at step "
                        f"{step}, {fmt(float(finite.max()) / median)} times its median."
                    ),
                    explanation=EXPLANATION,
                    steps=(step,),
                    evidence={"max": float(finite.max()), "median": median},
                    remedies=REMEDIES,
                )
            )
    growth = gradients_diverged(history, context)
    if growth is not None:
        diverged = divergence(loss_curve(history, context))
        findings.append(
            Finding(
                kind="exploding_gradients",
                severity="critical",
                summary=(
                    f"The loss diverged ({diverged}) while the global gradient norm grew "
                    f"{fmt(growth)}-fold from the start to the end of the run."
                ),
                explanation=EXPLANATION,
                evidence={"gradient_growth": growth, "divergence": diverged},
                remedies=REMEDIES,
            )
        )
    return findings


RULES = (rule,)
