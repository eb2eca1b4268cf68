"""The History metrics of curvature: `curv/lambda_max`, `curv/lambda_min`, `curv/trace`."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gradsight.curvature.hvp import HessianOperator, LossFn
from gradsight.curvature.lanczos import lanczos
from gradsight.curvature.trace import hutchpp


def curvature_metrics(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    *,
    trace: bool = False,
    tol: float = 1e-2,
    max_iter: int = 50,
    num_matvecs: int = 30,
    seed: int | torch.Generator = 0,
) -> dict[str, float]:
    """lambda_max and lambda_min of the loss Hessian from one Lanczos run, and its trace.

    Both ends of the spectrum come from the same Krylov space (`which="BE"`), so the pair
    costs little more than lambda_max alone. lambda_min near zero converges relative to a
    hundredth of lambda_max (see `lanczos`), enough for the saddle test lambda_min <
    -1e-2 lambda_max (Dauphin et al. 2014) and the stability test lr * lambda_max > 2
    (Cohen et al. 2021). The default tolerance is loose because this runs during training.

    Args:
        model: The model, in the mode it trains in.
        loss_fn: `loss_fn(model(inputs), targets)`, a scalar.
        data: One `(inputs, targets)` batch or a re-iterable of them.
        trace: Also estimate tr(H) by Hutch++ with `num_matvecs` products.
        tol: Relative residual tolerance of Lanczos.
        max_iter: At most this many products for the eigenvalues.
        num_matvecs: Products for the trace.
        seed: Seed or torch.Generator of the random vectors.

    Returns:
        {"curv/lambda_max": ..., "curv/lambda_min": ...} and "curv/trace" when asked, as
        Python floats (the names the diagnosis and the doctor read).
    """
    with HessianOperator(model, loss_fn, data) as op:
        ends = lanczos(
            op.matvec,
            op.dim,
            k=min(2, op.dim),
            which="BE",
            tol=tol,
            max_iter=max_iter,
            seed=seed,
            dtype=op.dtype,
            device=op.device,
        )
        values = {
            "curv/lambda_max": float(ends.values[-1]),
            "curv/lambda_min": float(ends.values[0]),
        }
        if trace:
            seed = seed + 1 if isinstance(seed, int) else seed
            result = hutchpp(
                op.matmat, op.dim, num_matvecs, seed=seed, dtype=op.dtype, device=op.device
            )
            values["curv/trace"] = result.value
    return values
