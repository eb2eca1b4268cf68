"""saddle_point: a near-zero gradient where the Hessian has a clearly negative eigenvalue.

At a saddle the gradient vanishes but the loss still decreases along the eigenvectors of
negative curvature; in high dimensions most critical points are saddles (Dauphin et al.
2014). Needs curvature metrics (`curv/lambda_min`, `curv/lambda_max`).
"""

from __future__ import annotations

from gradsight.diagnosis import thresholds as th
from gradsight.diagnosis.finding import Finding, Remedy
from gradsight.diagnosis.metrics import Context, fmt
from gradsight.telemetry.history import History


def rule(history: History, context: Context) -> list[Finding]:
    """Small gradient together with lambda_min < -fraction * lambda_max, at a logged step."""
    needed = ("curv/lambda_min", "curv/lambda_max", "grad/norm_global")
    if not all(name in history for name in needed):
        return []
    low = history.series("curv/lambda_min")
    high = history.series("curv/lambda_max")
    grad = history.series("grad/norm_global")
    largest = float(grad.max())
    for step in low.index:
        if step not in grad.index or step not in high.index:
            continue
        small = float(grad[step]) < th.SADDLE_GRAD_FRACTION * largest
        negative = float(low[step]) < -th.SADDLE_NEGATIVE_CURVATURE * abs(float(high[step]))
        if small and negative:
            return [
                Finding(
                    kind="saddle_point",
                    severity="warning",
                    summary=(
                        f"At step {int(step)} the gradient norm is {fmt(float(grad[step]))} "
                        f"({fmt(float(grad[step]) / largest)} of its largest) while the Hessian's "
                        f"smallest eigenvalue is {fmt(float(low[step]))} (largest "
                        f"{fmt(float(high[step]))}): a saddle point."
                    ),
                    explanation=(
                        "The gradient vanishes but the loss still falls along the directions of "
                        "negative curvature; plain gradient descent leaves them very slowly."
                    ),
                    steps=(int(step),),
                    evidence={
                        "grad_norm": float(grad[step]),
                        "lambda_min": float(low[step]),
                        "lambda_max": float(high[step]),
                    },
                    remedies=(
                        Remedy("momentum", "Velocity builds up along the escape direction."),
                        Remedy("adaptive_optimizer", "Rescales the small escape gradients."),
                    ),
                )
            ]
    return []


RULES = (rule,)
