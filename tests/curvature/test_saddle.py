"""A deep linear network initialised near zero sits at a saddle; curvature + diagnosis see it.

y = W3 W2 W1 x has a critical point at W = 0: the gradient there vanishes (it is a product
with at least two near-zero factors) while the loss falls along directions of negative
curvature (Saxe et al. 2014; Kawaguchi 2016). Gradient descent lingers, then escapes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import gradsight as gs
from gradsight.curvature import curvature_metrics, eigenvalues, flatten, power_iteration


def deep_linear_run(steps: int = 400, every: int = 50) -> tuple[gs.History, torch.nn.Module]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(128, 4, generator=gen)
    x = x - x.mean(0)  # centred: the output bias gets no gradient at W = 0 either
    y = x @ torch.randn(4, 3, generator=gen)
    model = gs.models.mlp(
        4, 3, depth=3, width=8, activation="identity", init="normal",
        init_options={"std": 2e-2}, seed=0,
    )  # fmt: skip
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    history = gs.History()
    for step in range(steps):
        if step % every == 0:
            history.log_many(step, curvature_metrics(model, F.mse_loss, (x, y)))
        loss = F.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        history.log(step, "loss", float(loss.detach()))
        history.log(
            step, "grad/norm_global", float(flatten([p.grad for p in model.parameters()]).norm())
        )
        optimizer.step()
    return history, model


def test_saddle_point_is_found_at_the_start() -> None:
    history, _ = deep_linear_run()
    grad = history.series("grad/norm_global")
    assert grad.iloc[0] < 1e-2 * grad.max()  # tiny gradient...
    low = history.series("curv/lambda_min")
    assert low.iloc[0] < -0.1  # ...with clearly negative curvature
    findings = [f for f in gs.diagnose(history) if f.kind == "saddle_point"]
    assert len(findings) == 1
    assert findings[0].steps == (0,)
    assert findings[0].evidence["lambda_min"] < 0


def test_power_iteration_misses_the_negative_curvature_lanczos_finds() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=gen)
    x = x - x.mean(0)
    y = x @ torch.randn(4, 3, generator=gen)
    model = gs.models.mlp(
        4, 3, depth=3, width=8, activation="identity", init="normal",
        init_options={"std": 2e-2}, seed=0,
    )  # fmt: skip
    top = power_iteration(model, F.mse_loss, (x, y), tol=1e-6, max_iter=500)
    low = eigenvalues(model, F.mse_loss, (x, y), which="SA", tol=1e-6)
    assert top.value > 0  # the largest magnitude is the output bias's curvature, 2/3
    assert float(low.values[0]) < -0.1
