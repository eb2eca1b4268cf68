"""Hutchinson and Hutch++ against exact traces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gradsight as gs
from gradsight.curvature import hutchinson, hutchpp, trace

from .cases import Case, exact_hessian


def decaying(n: int = 300, seed: int = 0) -> torch.Tensor:
    """Q diag(1/i^2) Q^T: a few large eigenvalues, like a network's Hessian outliers."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    spectrum = 1.0 / torch.arange(1, n + 1, dtype=torch.float64) ** 2
    return q @ torch.diag(spectrum) @ q.T


def test_hutchpp_beats_hutchinson_on_a_decaying_spectrum() -> None:
    a = decaying()
    exact = float(a.trace())
    matmat = lambda v: v @ a  # noqa: E731  (rows times the symmetric matrix)
    errors = {
        name: np.mean(
            [abs(fn(matmat, 300, 60, seed=s, dtype=torch.float64).value - exact) for s in range(5)]
        )
        for name, fn in (("hutch++", hutchpp), ("hutchinson", hutchinson))
    }
    assert errors["hutch++"] / exact < 0.02
    assert errors["hutch++"] < errors["hutchinson"] / 3


@pytest.fixture(scope="module")
def network() -> tuple[Case, float]:
    """A 195-parameter tanh MLP on off-centre inputs (a few large Hessian eigenvalues)."""
    gen = torch.Generator().manual_seed(0)
    model = gs.models.mlp(8, 3, depth=2, width=16, activation="tanh", seed=0).double()
    x = (torch.randn(64, 8, generator=gen) + 2).double()
    y = torch.randint(0, 3, (64,), generator=gen)
    case = Case(model, x, y, F.cross_entropy)
    return case, float(exact_hessian(case).trace())


@pytest.mark.parametrize("method", ["hutch++", "hutchinson"])
def test_trace_is_within_three_standard_errors(network, method: str) -> None:
    case, exact = network
    for seed in range(3):
        result = trace(
            case.model, case.loss_fn, case.batch, method=method, num_matvecs=99, seed=seed
        )
        assert abs(result.value - exact) < 3 * result.stderr, (seed, result)
        assert result.matvecs == 99


def test_hutchpp_within_a_few_percent_with_a_fixed_seed(network) -> None:
    case, exact = network
    result = trace(case.model, case.loss_fn, case.batch, num_matvecs=99, seed=0)
    assert result.value == pytest.approx(exact, rel=0.03)


BAD = [
    ("method", {"method": "exact"}, "unknown method .exact.; choose one of"),
    ("too_few_for_hutchpp", {"num_matvecs": 2}, "num_matvecs must be an int >= 3"),
    ("zero", {"method": "hutchinson", "num_matvecs": 0}, "num_matvecs must be an int >= 1"),
]


@pytest.mark.parametrize(("what", "kwargs", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_arguments(network, what: str, kwargs: dict, message: str) -> None:
    case, _ = network
    with pytest.raises(ValueError, match=message):
        trace(case.model, case.loss_fn, case.batch, **kwargs)
