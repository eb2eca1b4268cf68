"""What Adam's bias correction does: the uncorrected moments are E[g] (1 - b1^t) too small."""

import math

import pytest
import torch

from gradsight.optim import AdamNoBiasCorrection

CASES = [
    # id, betas, step t: with a constant gradient, the first moment is g (1 - b1^t) exactly
    ("first-step", (0.9, 0.999), 1),
    ("tenth-step", (0.9, 0.999), 10),
    ("slow-beta", (0.99, 0.999), 5),
]


@pytest.mark.parametrize(("betas", "t"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_moments_are_shrunk_by_one_minus_beta_to_the_t(betas, t):
    """E[m_t] = E[g] (1 - b1^t) and E[v_t] = E[g^2] (1 - b2^t) (Kingma & Ba 2015, section 3)."""
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    g = torch.tensor([0.5, -2.0, 1e-3], dtype=torch.float64)
    opt = AdamNoBiasCorrection([w], lr=1e-9, betas=betas)
    for _ in range(t):
        w.grad = g.clone()
        opt.step()
    b1, b2 = betas
    state = opt.state[w]
    torch.testing.assert_close(state["exp_avg"], g * (1 - b1**t), rtol=1e-12, atol=0)
    torch.testing.assert_close(state["exp_avg_sq"], g**2 * (1 - b2**t), rtol=1e-12, atol=0)


def test_first_step_is_larger_than_adams_by_the_missing_correction():
    """Step one: Adam moves lr; uncorrected it moves lr (1 - b1) / sqrt(1 - b2) = 3.16 lr."""
    lr, betas = 0.01, (0.9, 0.999)
    steps = {}
    for name, cls in (("adam", torch.optim.Adam), ("plain", AdamNoBiasCorrection)):
        w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        opt = cls([w], lr=lr, betas=betas, eps=0.0)
        w.grad = torch.tensor([0.7], dtype=torch.float64)
        opt.step()
        steps[name] = -w.item()
    assert steps["adam"] == pytest.approx(lr, rel=1e-12)
    assert steps["plain"] == pytest.approx(lr * 0.1 / math.sqrt(0.001), rel=1e-12)


def test_weight_decay_is_added_to_the_gradient():
    w = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    opt = AdamNoBiasCorrection([w], lr=0.1, weight_decay=0.5, eps=0.0)
    w.grad = torch.zeros(1, dtype=torch.float64)
    opt.step()  # g = 0 + 0.5 * 2 = 1: m = 0.1, v = 0.001, step = 0.1 * 0.1 / sqrt(0.001)
    assert w.item() == pytest.approx(2.0 - 0.1 * 0.1 / math.sqrt(0.001), rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": -1.0}, "lr must be > 0, got -1.0"),
        ({"betas": (0.9, 1.0)}, r"betas\[1\] must be in \[0, 1\), got 1.0"),
        ({"eps": -1e-8}, "eps must be >= 0, got -1e-08"),
        ({"weight_decay": -1.0}, "weight_decay must be >= 0, got -1.0"),
    ],
    ids=["lr", "beta2", "eps", "weight-decay"],
)
def test_bad_arguments_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdamNoBiasCorrection(torch.nn.Linear(2, 2).parameters(), **kwargs)
