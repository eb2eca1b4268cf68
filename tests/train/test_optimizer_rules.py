"""gradsight's optimizer names follow the update rules as the theory writes them.

Each rule is written out in plain Python (floats, one element at a time) and run for a few
steps on a separable quartic f(w) = sum_i w_i^4 / 4 + b_i w_i^2 / 2 + c_i w_i; the torch
optimizer built by name must land on the same weights in float64.
"""

import math

import pytest
import torch

import gradsight.optim  # noqa: F401  (registers adam_no_bias_correction)
from gradsight.data.task import Task
from gradsight.train import build_optimizer, fit

B = [0.5, -1.0, 2.0, 0.1, -0.3, 1.5]
C = [0.2, -0.4, 0.0, 1.0, -1.2, 0.3]
W0 = [1.0, -0.5, 0.3, 2.0, -1.5, 0.7]
STEPS = 6
RTOL, ATOL = 1e-12, 1e-14


def grad(w):
    """Gradient of the quartic, element by element: w^3 + b w + c."""
    return [wi**3 + b * wi + c for wi, b, c in zip(w, B, C, strict=True)]


def objective(w):
    b, c = torch.tensor(B, dtype=w.dtype), torch.tensor(C, dtype=w.dtype)
    return (w**4 / 4 + b * w**2 / 2 + c * w).sum()


# --- the rules, as written in the textbooks -------------------------------------------------


def ref_sgd(lr, weight_decay=0.0):
    """w -= lr * (g + wd * w)."""
    w = list(W0)
    for _ in range(STEPS):
        w = [wi - lr * (gi + weight_decay * wi) for wi, gi in zip(w, grad(w), strict=True)]
    return w


def ref_momentum(lr, mu):
    """Heavy ball (Polyak 1964) as torch writes it: m = mu m + g; w -= lr m."""
    w, m = list(W0), [0.0] * len(W0)
    for _ in range(STEPS):
        m = [mu * mi + gi for mi, gi in zip(m, grad(w), strict=True)]
        w = [wi - lr * mi for wi, mi in zip(w, m, strict=True)]
    return w


def ref_momentum_velocity(lr, mu):
    """The velocity form v = mu v - lr g; w += v (the same rule for a constant lr)."""
    w, v = list(W0), [0.0] * len(W0)
    for _ in range(STEPS):
        v = [mu * vi - lr * gi for vi, gi in zip(v, grad(w), strict=True)]
        w = [wi + vi for wi, vi in zip(w, v, strict=True)]
    return w


def ref_nesterov(lr, mu):
    """Sutskever et al. 2013: v = mu v - lr grad(w + mu v); w += v.

    torch keeps the look-ahead point w + mu v as its parameter, so that is what is compared.
    """
    w, v = list(W0), [0.0] * len(W0)
    for _ in range(STEPS):
        ahead = [wi + mu * vi for wi, vi in zip(w, v, strict=True)]
        v = [mu * vi - lr * gi for vi, gi in zip(v, grad(ahead), strict=True)]
        w = [wi + vi for wi, vi in zip(w, v, strict=True)]
    return [wi + mu * vi for wi, vi in zip(w, v, strict=True)]


def ref_adagrad(lr, eps=1e-10):
    """Duchi et al. 2011: s += g^2; w -= lr g / (sqrt(s) + eps)."""
    w, s = list(W0), [0.0] * len(W0)
    for _ in range(STEPS):
        g = grad(w)
        s = [si + gi * gi for si, gi in zip(s, g, strict=True)]
        w = [wi - lr * gi / (math.sqrt(si) + eps) for wi, gi, si in zip(w, g, s, strict=True)]
    return w


def ref_rmsprop(lr, alpha=0.99, eps=1e-8):
    """Tieleman & Hinton 2012: s = a s + (1 - a) g^2; w -= lr g / (sqrt(s) + eps)."""
    w, s = list(W0), [0.0] * len(W0)
    for _ in range(STEPS):
        g = grad(w)
        s = [alpha * si + (1 - alpha) * gi * gi for si, gi in zip(s, g, strict=True)]
        w = [wi - lr * gi / (math.sqrt(si) + eps) for wi, gi, si in zip(w, g, s, strict=True)]
    return w


def ref_adam(lr, betas=(0.9, 0.999), eps=1e-8, decoupled=0.0, correct=True):
    """Kingma & Ba 2015: m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t);
    w -= lr m_hat / (sqrt(v_hat) + eps). AdamW first does w -= lr * wd * w."""
    b1, b2 = betas
    w, m, v = list(W0), [0.0] * len(W0), [0.0] * len(W0)
    for t in range(1, STEPS + 1):
        g = grad(w)
        w = [wi - lr * decoupled * wi for wi in w]
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g, strict=True)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g, strict=True)]
        c1, c2 = (1 - b1**t, 1 - b2**t) if correct else (1.0, 1.0)
        w = [
            wi - lr * (mi / c1) / (math.sqrt(vi / c2) + eps)
            for wi, mi, vi in zip(w, m, v, strict=True)
        ]
    return w


CASES = [
    # id, gradsight name and arguments, reference
    ("sgd", ("sgd", {"lr": 0.05}), lambda: ref_sgd(0.05)),
    ("sgd-weight-decay", ("sgd", {"lr": 0.05, "weight_decay": 0.1}), lambda: ref_sgd(0.05, 0.1)),
    ("momentum", ("momentum", {"lr": 0.02}), lambda: ref_momentum(0.02, 0.9)),
    (
        "momentum-velocity-form",
        ("momentum", {"lr": 0.02}),
        lambda: ref_momentum_velocity(0.02, 0.9),
    ),
    ("sgd-momentum-0.5", ("sgd", {"lr": 0.02, "momentum": 0.5}), lambda: ref_momentum(0.02, 0.5)),
    ("nag-look-ahead", ("nag", {"lr": 0.02}), lambda: ref_nesterov(0.02, 0.9)),
    ("adagrad", ("adagrad", {"lr": 0.1}), lambda: ref_adagrad(0.1)),
    ("rmsprop", ("rmsprop", {"lr": 0.01}), lambda: ref_rmsprop(0.01)),
    ("adam", ("adam", {"lr": 0.01}), lambda: ref_adam(0.01)),
    (
        "adam-betas",
        ("adam", {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-6}),
        lambda: ref_adam(0.01, (0.5, 0.9), 1e-6),
    ),
    (
        "adamw",
        ("adamw", {"lr": 0.01, "weight_decay": 0.1}),
        lambda: ref_adam(0.01, decoupled=0.1),
    ),
    (
        "adam-no-bias-correction",
        ("adam_no_bias_correction", {"lr": 0.01}),
        lambda: ref_adam(0.01, correct=False),
    ),
]


@pytest.mark.parametrize(("spec", "reference"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_named_optimizer_follows_its_formula(spec, reference):
    name, kwargs = spec
    w = torch.tensor(W0, dtype=torch.float64, requires_grad=True)
    opt = build_optimizer(name, [w], **kwargs)
    for _ in range(STEPS):
        opt.zero_grad()
        objective(w).backward()
        opt.step()
    torch.testing.assert_close(
        w.detach(), torch.tensor(reference(), dtype=torch.float64), rtol=RTOL, atol=ATOL
    )


def test_gd_is_sgd_on_the_full_batch():
    """gd: fit with batch_size=None takes w -= lr * grad L(w) over the whole training set."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=generator)
    y = torch.randint(0, 2, (40,), generator=generator)
    task = Task("toy", x, y, x, y, "cross_entropy", "accuracy", (3,), 2)
    model = torch.nn.Linear(3, 2)
    torch.manual_seed(0)
    torch.nn.init.normal_(model.weight)
    expected = torch.nn.Linear(3, 2)
    expected.load_state_dict(model.state_dict())
    lr, steps = 0.3, 5
    fit(model, task, optimizer="sgd", lr=lr, batch_size=None, steps=steps, watch=False)
    for _ in range(steps):
        loss = task.loss_fn(expected(x), y)
        grads = torch.autograd.grad(loss, list(expected.parameters()))
        with torch.no_grad():
            for p, g in zip(expected.parameters(), grads, strict=True):
                p -= lr * g
    for p, q in zip(model.parameters(), expected.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
