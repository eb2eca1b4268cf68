"""Lamb against a plain float64 implementation of You et al. 2019, Algorithm 2."""

import copy
import math

import pytest
import torch

from gradsight.optim import Lamb
from gradsight.train import build_optimizer

STEPS = 5
RTOL, ATOL = 1e-11, 1e-13


def reference_lamb(weights, grad_fn, steps, lr, betas, eps, wd, bias_correction):
    """The paper's algorithm, one tensor (a flat list of floats) at a time.

    Returns the weights after `steps` updates and each tensor's trust ratio at the last step.
    """
    b1, b2 = betas
    w = [list(t) for t in weights]
    m = [[0.0] * len(t) for t in w]
    v = [[0.0] * len(t) for t in w]
    ratios = []
    for t in range(1, steps + 1):
        grads = grad_fn(w)
        ratios = []
        for k in range(len(w)):
            m[k] = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m[k], grads[k], strict=True)]
            v[k] = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v[k], grads[k], strict=True)]
            c1, c2 = (1 - b1**t, 1 - b2**t) if bias_correction else (1.0, 1.0)
            r = [(mi / c1) / (math.sqrt(vi / c2) + eps) for mi, vi in zip(m[k], v[k], strict=True)]
            u = [ri + wd * wi for ri, wi in zip(r, w[k], strict=True)]
            w_norm = math.sqrt(sum(x * x for x in w[k]))
            u_norm = math.sqrt(sum(x * x for x in u))
            ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
            ratios.append(ratio)
            w[k] = [wi - lr * ratio * ui for wi, ui in zip(w[k], u, strict=True)]
    return w, ratios


# A separable quartic per tensor, with different coefficients so the trust ratios differ.
SHAPES = [(3,), (2, 4), (5,), (1,)]
SCALES = [1.0, 0.1, 3.0, 0.5]


def initial_weights(zero_tensor=None):
    generator = torch.Generator().manual_seed(0)
    weights = [torch.randn(s, generator=generator, dtype=torch.float64) for s in SHAPES]
    if zero_tensor is not None:
        weights[zero_tensor].zero_()
    return weights


def grad_fn(w):
    return [[s * (x**3 - x + 0.3) for x in t] for t, s in zip(w, SCALES, strict=True)]


def loss(params):
    return sum(
        s * (p**4 / 4 - p**2 / 2 + 0.3 * p).sum() for p, s in zip(params, SCALES, strict=True)
    )


CASES = [
    # id, Lamb arguments, tensor set to zero (its trust ratio falls back to 1)
    ("default", {}, None),
    ("weight-decay", {"weight_decay": 0.1}, None),
    ("no-bias-correction", {"bias_correction": False, "weight_decay": 0.01}, None),
    ("betas-eps", {"betas": (0.8, 0.99), "eps": 1e-3, "weight_decay": 0.05}, None),
    ("one-tensor-per-chunk", {"chunk_elements": 1, "weight_decay": 0.1}, None),
    ("uneven-chunks", {"chunk_elements": 9, "weight_decay": 0.1}, None),
    ("zero-weights", {"weight_decay": 0.1}, 1),
]


@pytest.mark.parametrize("implementation", ["fused", "foreach"])
@pytest.mark.parametrize(
    ("options", "zero_tensor"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_lamb_matches_the_paper_in_float64(options, zero_tensor, implementation):
    lr = 0.05
    params = [w.clone().requires_grad_() for w in initial_weights(zero_tensor)]
    opt = Lamb(params, lr=lr, implementation=implementation, **options)
    for _ in range(STEPS):
        opt.zero_grad()
        loss(params).backward()
        opt.step()
    settings = {"betas": (0.9, 0.999), "eps": 1e-6, "weight_decay": 0.0, "bias_correction": True}
    settings |= {k: v for k, v in options.items() if k in settings}
    flat = [w.flatten().tolist() for w in initial_weights(zero_tensor)]
    expected, ratios = reference_lamb(
        flat,
        grad_fn,
        STEPS,
        lr,
        **{
            "betas": settings["betas"],
            "eps": settings["eps"],
            "wd": settings["weight_decay"],
            "bias_correction": settings["bias_correction"],
        },
    )
    for p, want, ratio in zip(params, expected, ratios, strict=True):
        torch.testing.assert_close(
            p.detach().flatten(), torch.tensor(want, dtype=torch.float64), rtol=RTOL, atol=ATOL
        )
        got = opt.state[p]["trust_ratio"]
        torch.testing.assert_close(got, torch.tensor(ratio, dtype=torch.float64), rtol=1e-9, atol=0)


def test_trust_ratio_is_a_tensor_per_parameter_for_telemetry():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    opt = Lamb(model.parameters(), lr=0.01)
    model(torch.randn(3, 4)).sum().backward()
    opt.step()
    ratios = [opt.state[p]["trust_ratio"] for p in model.parameters()]
    assert all(r.shape == () and r.dtype == torch.float32 for r in ratios)
    assert all(r.item() > 0 for r in ratios)


def test_state_dict_round_trip_continues_identically():
    torch.manual_seed(0)
    a = torch.nn.Linear(4, 3)
    b = torch.nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    opt_a = Lamb(a.parameters(), lr=0.01, weight_decay=0.01)
    x = torch.randn(8, 4)
    a(x).pow(2).sum().backward()
    opt_a.step()
    b.load_state_dict(a.state_dict())
    opt_b = Lamb(b.parameters(), lr=0.01, weight_decay=0.01)
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))  # state_dict shares tensors
    for model, opt in ((a, opt_a), (b, opt_b)):
        opt.zero_grad()
        model(x).pow(2).sum().backward()
        opt.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_lamb_by_name_trains():
    import gradsight.optim  # noqa: F401  (registers "lamb")

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    x = torch.randn(64, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    opt = build_optimizer("lamb", model.parameters(), 0.1)
    first = None
    for _ in range(100):
        loss_value = torch.nn.functional.mse_loss(model(x), y)
        first = first if first is not None else loss_value.item()
        opt.zero_grad()
        loss_value.backward()
        opt.step()
    assert loss_value.item() < 0.1 * first


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": 0.0}, "lr must be > 0, got 0.0"),
        ({"betas": (1.0, 0.9)}, r"betas\[0\] must be in \[0, 1\), got 1.0"),
        ({"betas": (0.9, -0.1)}, r"betas\[1\] must be in \[0, 1\), got -0.1"),
        ({"eps": -1.0}, "eps must be >= 0, got -1.0"),
        ({"weight_decay": -0.1}, "weight_decay must be >= 0, got -0.1"),
        ({"chunk_elements": 0}, "chunk_elements must be >= 1, got 0"),
    ],
    ids=["lr", "beta1", "beta2", "eps", "weight-decay", "chunk"],
)
def test_bad_arguments_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Lamb(torch.nn.Linear(2, 2).parameters(), **kwargs)


def _trained(implementation: str, steps: int = 5) -> tuple[list[torch.Tensor], Lamb]:
    params = [w.clone().requires_grad_() for w in initial_weights(None)]
    opt = Lamb(params, lr=0.05, weight_decay=0.1, implementation=implementation)
    for _ in range(steps):
        opt.zero_grad()
        loss(params).backward()
        opt.step()
    return params, opt


def test_auto_takes_the_public_path_when_torch_has_no_fused_kernel(monkeypatch):
    monkeypatch.delattr(torch, "_fused_adam_")
    params, opt = _trained("auto")
    assert opt.implementation == "foreach"
    expected, _ = _trained("foreach")
    for got, want in zip(params, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    with pytest.raises(ValueError, match="no fused Adam kernel"):
        Lamb(params, implementation="fused")


def test_auto_falls_back_when_the_fused_kernel_raises(monkeypatch):
    def unsupported(*args, **kwargs):
        raise NotImplementedError("no kernel for this dtype")

    monkeypatch.setattr(torch, "_fused_adam_", unsupported)
    _, opt = _trained("auto")
    assert opt.implementation == "foreach"
    with pytest.raises(NotImplementedError):
        _trained("fused")
