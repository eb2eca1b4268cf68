"""HessianLR on a quadratic with known curvature: lr = c / lambda_max, stable iff c < 2."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from gradsight.optim import HessianLR, hessian_schedule

CURVATURES = (10.0, 4.0, 1.0)  # lambda_max = 10


class Point(nn.Module):
    """theta itself is the output: the loss below is a quadratic in theta."""

    def __init__(self) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))

    def forward(self, x: Tensor) -> Tensor:
        return self.theta


def quadratic(curvatures=CURVATURES, seed: int = 0):
    """L(theta) = 1/2 (theta - t)^T A (theta - t), A = Q diag(curvatures) Q^T."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=gen))
    a = q @ torch.diag(torch.tensor(curvatures)) @ q.T

    def loss_fn(theta: Tensor, target: Tensor) -> Tensor:
        d = theta - target
        return 0.5 * d @ a @ d

    return loss_fn, (torch.zeros(1), torch.zeros(3))


def descend(c: float, steps: int, every: int = 10) -> tuple[list[float], HessianLR]:
    model = Point()
    loss_fn, batch = quadratic()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
    scheduler = HessianLR(optimizer, model, loss_fn, batch, c=c, every=every, tol=1e-8)
    losses = []
    for _ in range(steps):
        loss = loss_fn(model(batch[0]), batch[1])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
    return losses, scheduler


RUNS = [
    # (id, c, converges)
    ("natural-step-c1", 1.0, True),
    ("below-edge-c1.9", 1.9, True),
    ("beyond-edge-c2.5", 2.5, False),
]


@pytest.mark.parametrize(("c", "converges"), [r[1:] for r in RUNS], ids=[r[0] for r in RUNS])
def test_gradient_descent_with_hessian_lr(c: float, converges: bool) -> None:
    losses, scheduler = descend(c, steps=100)
    assert scheduler.lambda_max == pytest.approx(10.0, rel=1e-5)
    assert scheduler.get_last_lr() == [pytest.approx(c / 10.0, rel=1e-5)]
    if converges:
        assert losses[-1] < 1e-6 * losses[0]
    else:
        assert losses[-1] > 1e6 * losses[0]


def test_re_estimates_every_n_steps_and_respects_max_lr() -> None:
    model = Point()
    loss_fn, batch = quadratic()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
    scheduler = HessianLR(optimizer, model, loss_fn, lambda: batch, every=10, max_lr=0.05)
    for _ in range(30):
        optimizer.step()
        scheduler.step()
    assert [step for step, _, _ in scheduler.estimates] == [0, 10, 20, 30]
    assert optimizer.param_groups[0]["lr"] == 0.05


def test_no_positive_curvature_keeps_the_lr() -> None:
    model = Point()
    loss_fn, batch = quadratic(curvatures=(-1.0, -2.0, -3.0))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    scheduler = HessianLR(optimizer, model, loss_fn, batch)
    assert scheduler.lambda_max < 0
    assert optimizer.param_groups[0]["lr"] == 0.01


def test_schedule_factory_defaults_to_ten_estimates() -> None:
    model = Point()
    loss_fn, batch = quadratic()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    scheduler = hessian_schedule(optimizer, 200, model=model, loss_fn=loss_fn, data=batch, c=0.5)
    assert scheduler.every == 20
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05, rel=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"c": 0.0}, "c must be"), ({"every": 0}, "every must be"), ({"max_lr": -1.0}, "max_lr")],
    ids=["c", "every", "max_lr"],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    model = Point()
    loss_fn, batch = quadratic()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with pytest.raises(ValueError, match=message):
        HessianLR(optimizer, model, loss_fn, batch, **kwargs)
