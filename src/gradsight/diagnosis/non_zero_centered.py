"""non_zero_centered: inputs or activations far from zero mean.

If every input to a unit is positive, the gradients of its weights all share the sign of
the back-propagated error, so gradient descent can only move them all up or all down and
zig-zags towards the optimum (LeCun et al. 1998, sec. 4.3). Sigmoid outputs (mean ~0.5) and
raw pixel intensities have this problem; tanh outputs and standardised inputs do not.
"""

from __future__ import annotations

import numpy as np

from gradsight.diagnosis import thresholds as th
from gradsight.diagnosis.finding import Finding, Remedy
from gradsight.diagnosis.metrics import Context, fmt, table
from gradsight.telemetry.history import History

EXPLANATION = (
    "When all of a unit's inputs share one sign, all its weight gradients share the sign of "
    "the error, so the weights can only move together and descent zig-zags."
)


def activations(history: History, context: Context) -> list[Finding]:
    """|mean| / std of sigmoid outputs (median over logged steps)."""
    if not ("act/saturated" in history and "act/mean" in history):
        return []
    sigmoid_like = history.layers("act/saturated")
    mean = table(history, "act/mean")[sigmoid_like].median()
    std = table(history, "act/std")[sigmoid_like].median()
    offset = (mean.abs() / std.replace(0, np.nan)).dropna()
    flagged = offset[offset > th.OFFCENTER_ACTIVATION_WARNING]
    if flagged.empty:
        return []
    return [
        Finding(
            kind="non_zero_centered",
            severity="warning",
            summary=(
                f"{len(flagged)} activation layers output values far from zero mean: |mean| is "
                f"up to {fmt(float(flagged.max()))} standard deviations (layer "
                f"{flagged.idxmax()}, mean {fmt(float(mean[flagged.idxmax()]))})."
            ),
            explanation=EXPLANATION,
            layers=tuple(flagged.index),
            evidence={"mean_over_std": {k: float(v) for k, v in offset.items()}},
            remedies=(
                Remedy("relu_activation", "Or tanh: sigmoid's outputs are all positive."),
                Remedy("batch_norm", "Re-centres each layer's inputs."),
                Remedy("adaptive_optimizer", "Per-parameter steps soften the zig-zag."),
            ),
        )
    ]


def inputs(history: History, context: Context) -> list[Finding]:
    """|mean| / std of the task's training inputs (needs the task)."""
    if context.task is None:
        return []
    x = context.task.x_train.double()
    std = float(x.std())
    offset = abs(float(x.mean())) / std if std > 0 else 0.0
    if offset <= th.OFFCENTER_INPUT_WARNING:
        return []
    return [
        Finding(
            kind="non_zero_centered",
            severity="warning",
            summary=(
                f"The inputs are not zero-centred: mean {fmt(float(x.mean()))}, std {fmt(std)} "
                f"({fmt(offset)} standard deviations off zero)."
            ),
            explanation=EXPLANATION,
            evidence={"input_mean": float(x.mean()), "input_std": std, "mean_over_std": offset},
            remedies=(
                Remedy("normalize_inputs", "Standardise each feature on the train set."),
                Remedy("batch_norm", "A first normalisation layer does it inside the net."),
            ),
        )
    ]


RULES = (activations, inputs)
