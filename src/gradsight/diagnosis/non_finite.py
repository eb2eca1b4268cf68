"""non_finite: a NaN or Inf appeared (the watch names the first module and parameter)."""

from __future__ import annotations

import numpy as np

from gradsight.diagnosis.finding import Finding, Remedy
from gradsight.diagnosis.metrics import Context
from gradsight.telemetry.history import History


def rule(history: History, context: Context) -> list[Finding]:
    """A `nonfinite/module` row, or a non-finite loss."""
    module = param = None
    step = None
    if "nonfinite/module" in history:
        rows = history.frame()
        rows = rows[rows["name"] == "nonfinite/module"]
        step, module = int(rows["step"].iloc[0]), rows["layer"].iloc[0] or None
        if "nonfinite/grad" in history:
            param = history.layers("nonfinite/grad")[0]
    elif "loss" in history:
        loss = history.series("loss")
        bad = loss[~np.isfinite(loss.to_numpy())]
        if len(bad):
            step = int(bad.index[0])
    if step is None:
        return []
    where = [f"first in the output of {module}"] if module else []
    where += [f"first in the gradient of {param}"] if param else []
    return [
        Finding(
            kind="non_finite",
            severity="critical",
            summary=f"NaN/Inf at step {step}" + (": " + ", ".join(where) if where else "") + ".",
            explanation=(
                "Once a NaN or Inf enters the weights every later output is NaN: usually an "
                "exploding step (learning rate, no clipping) or an invalid operation (log(0), "
                "division by zero) in the named module."
            ),
            layers=tuple(x for x in (module, param) if x),
            steps=(step,),
            evidence={"module": module, "param": param, "step": step},
            remedies=(
                Remedy("lower_learning_rate", "The usual cause is a step that overshoots."),
                Remedy("gradient_clipping", "Bounds every step."),
                Remedy("normalize_inputs", "Huge inputs overflow activations."),
            ),
        )
    ]


RULES = (rule,)
