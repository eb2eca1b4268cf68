"""hvp against the exact Hessian, float64, on every tiny model and both product methods."""

from __future__ import annotations

import pytest
import torch

from gradsight.curvature import HessianOperator, hvp, unflatten

from .cases import CASES, exact_hessian, make_case

# torch.func's forward-over-reverse fails inside F.mse_loss's backward ("ZeroTensors are
# immutable", torch 2.13): such cases must fail with a clear error pointing to "reverse".
FAILS = {("mse_relu", "forward"): "try method='reverse'"}
TABLE = [(case, method) for case in CASES for method in ("reverse", "forward")]


@pytest.mark.parametrize(("case_name", "method"), TABLE, ids=[f"{c}-{m}" for c, m in TABLE])
def test_hvp_matches_exact_hessian_or_fails_clearly(case_name: str, method: str) -> None:
    case = make_case(case_name)
    hessian = exact_hessian(case)
    gen = torch.Generator().manual_seed(1)
    v = torch.randn(hessian.shape[0], generator=gen, dtype=torch.float64)
    if (case_name, method) in FAILS:
        with pytest.raises(RuntimeError, match=FAILS[case_name, method]):
            hvp(case.model, case.loss_fn, case.batch, v, method=method)
        return
    hv = hvp(case.model, case.loss_fn, case.batch, v, method=method)
    torch.testing.assert_close(hv, hessian @ v, rtol=0, atol=1e-8)


def test_hvp_takes_per_parameter_vectors_and_returns_them() -> None:
    case = make_case("mlp_tanh")
    params = list(case.model.parameters())
    flat = torch.randn(sum(p.numel() for p in params), dtype=torch.float64)
    parts = hvp(case.model, case.loss_fn, case.batch, unflatten(flat, params))
    assert [p.shape for p in parts] == [p.shape for p in params]
    torch.testing.assert_close(
        torch.cat([p.reshape(-1) for p in parts]), exact_hessian(case) @ flat
    )


def test_loader_is_the_size_weighted_mean_of_batches() -> None:
    case = make_case("mlp_tanh")
    loader = [(case.x[:4], case.y[:4]), (case.x[4:], case.y[4:])]  # unequal sizes
    v = torch.randn(exact_hessian(case).shape[0], dtype=torch.float64)
    whole = hvp(case.model, case.loss_fn, case.batch, v)
    torch.testing.assert_close(hvp(case.model, case.loss_fn, loader, v), whole, rtol=0, atol=1e-10)


def test_batchnorm_buffers_rng_and_grad_are_left_alone() -> None:
    case = make_case("batchnorm_train")
    before = {k: b.clone() for k, b in case.model.named_buffers()}
    state = torch.get_rng_state()
    v = torch.ones(sum(p.numel() for p in case.model.parameters()), dtype=torch.float64)
    hvp(case.model, case.loss_fn, [case.batch, case.batch], v, method="reverse")
    hvp(case.model, case.loss_fn, case.batch, v, method="forward")
    for k, b in case.model.named_buffers():
        assert torch.equal(b, before[k]), k
    assert torch.equal(torch.get_rng_state(), state)
    assert all(p.grad is None for p in case.model.parameters())


def test_unsupported_module_error_names_the_module() -> None:
    case = make_case("batchnorm_train")

    def broken(output, target):  # a loss with no second derivative through batch norm
        raise RuntimeError("derivative not implemented")

    with pytest.raises(RuntimeError, match="BatchNorm1d"):
        hvp(case.model, broken, case.batch, torch.zeros(62, dtype=torch.float64))


BAD = [
    ("scalar_data", 3.0, "pair or an iterable"),
    ("iterator_data", iter([]), "one-shot iterator"),
    ("method", "sideways", "unknown method .sideways.; choose one of"),
    ("vector_size", "short", "vector must be flat"),
]


@pytest.mark.parametrize(("what", "value", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_arguments_raise_one_line_value_errors(what: str, value, message: str) -> None:
    case = make_case("mlp_tanh")
    data, method, v = case.batch, "auto", torch.zeros(46, dtype=torch.float64)
    if what.endswith("data"):
        data = value
    elif what == "method":
        method = value
    else:
        v = torch.zeros(3, dtype=torch.float64)
    with pytest.raises(ValueError, match=message):
        hvp(case.model, case.loss_fn, data, v, method=method)


def test_operator_outside_its_context_refuses() -> None:
    case = make_case("mlp_tanh")
    op = HessianOperator(case.model, case.loss_fn, case.batch)
    with pytest.raises(RuntimeError, match="context manager"):
        op.matvec(torch.zeros(op.dim, dtype=torch.float64))
