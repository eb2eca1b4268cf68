"""Lanczos and power iteration against numpy.linalg.eigvalsh of the exact Hessian."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradsight.curvature import eigenvalues, lanczos, power, power_iteration

from .cases import exact_hessian, make_case


def reference(hessian: torch.Tensor, which: str, k: int) -> np.ndarray:
    """The k wanted eigenvalues of the dense matrix, in `lanczos`'s output order."""
    values = np.linalg.eigvalsh(hessian.numpy())  # ascending
    if which == "LA":
        return values[::-1][:k]
    if which == "SA":
        return values[:k]
    return values[np.argsort(-np.abs(values), kind="stable")][:k]


CASES = [
    (case, which, k)
    for case in ("mlp_tanh", "batchnorm_train", "lstm_cell")
    for which in ("LA", "SA", "LM")
    for k in (1, 3)
]


@pytest.mark.parametrize(
    ("case_name", "which", "k"), CASES, ids=[f"{c}-{w}-k{k}" for c, w, k in CASES]
)
def test_lanczos_matches_eigvalsh(case_name: str, which: str, k: int) -> None:
    case = make_case(case_name)
    hessian = exact_hessian(case)
    result = eigenvalues(
        case.model, case.loss_fn, case.batch, k=k, which=which, tol=1e-10, vectors=True
    )
    np.testing.assert_allclose(result.values.numpy(), reference(hessian, which, k), atol=1e-6)
    assert result.converged
    # Ritz vectors: unit length, and eigenvectors of the exact Hessian.
    vectors = result.vectors  # (k, n)
    torch.testing.assert_close(vectors.norm(dim=1), torch.ones(k, dtype=torch.float64))
    residual = hessian @ vectors.T - vectors.T * result.values
    assert float(residual.abs().max()) < 1e-5


def matrix(spectrum: list[float], seed: int = 0) -> torch.Tensor:
    """Q diag(spectrum) Q^T with a random orthogonal Q, float64."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(
        torch.randn(len(spectrum), len(spectrum), generator=gen, dtype=torch.float64)
    )
    return q @ torch.diag(torch.tensor(spectrum, dtype=torch.float64)) @ q.T


OPERATORS = [
    # (id, spectrum, which, k, expected)
    ("outlier-LA", [50.0, 20.0, *np.linspace(-1, 1, 398)], "LA", 2, [50.0, 20.0]),
    ("negative-SA", [10.0, *np.linspace(-0.5, 1, 398), -3.0], "SA", 1, [-3.0]),
    ("negative-dominant-LM", [2.0, *np.linspace(-1, 1, 198), -7.0], "LM", 1, [-7.0]),
    ("repeated-LA", [5.0, 5.0, 5.0, 1.0, 1.0, 0.0], "LA", 3, [5.0, 5.0, 5.0]),
    ("both-ends-BE", [4.0, *np.linspace(-1, 1, 98), -2.0], "BE", 2, [-2.0, 4.0]),
]


@pytest.mark.parametrize(
    ("spectrum", "which", "k", "expected"),
    [o[1:] for o in OPERATORS],
    ids=[o[0] for o in OPERATORS],
)
def test_lanczos_on_known_spectra(spectrum, which, k, expected) -> None:
    a = matrix(list(spectrum))
    result = lanczos(
        lambda v: a @ v, len(spectrum), k=k, which=which, tol=1e-8, dtype=torch.float64
    )
    np.testing.assert_allclose(result.values.numpy(), expected, atol=1e-6)
    # Well-separated outliers need far fewer products than the dimension.
    if len(spectrum) > 100:
        assert result.matvecs < 60


def test_default_tolerance_is_within_a_tenth_of_a_percent() -> None:
    spectrum = [1.0, 0.97, *np.linspace(0.0, 0.9, 498)]  # close gap: hard for power iteration
    a = matrix(spectrum).float()
    result = lanczos(lambda v: a @ v, 500)  # tol=1e-3
    assert abs(float(result.values[0]) - 1.0) < 1e-3


def test_power_iteration_finds_the_largest_magnitude_only() -> None:
    a = matrix([1.0, *np.linspace(-0.2, 0.5, 48), -4.0])
    result = power(lambda v: a @ v, 50, tol=1e-10, max_iter=500, dtype=torch.float64)
    assert result.value == pytest.approx(-4.0, abs=1e-6)  # magnitude, not the top
    assert result.converged


def test_power_iteration_on_a_model_agrees_with_lanczos_lm() -> None:
    case = make_case("mlp_tanh")
    top = power_iteration(case.model, case.loss_fn, case.batch, tol=1e-12, max_iter=2000)
    expected = reference(exact_hessian(case), "LM", 1)[0]
    assert top.value == pytest.approx(expected, rel=1e-6)


def test_same_seed_same_answer_and_generator_accepted() -> None:
    a = matrix([3.0, *np.linspace(0, 1, 99)])
    run = lambda seed: lanczos(lambda v: a @ v, 100, tol=1e-2, seed=seed, dtype=torch.float64)  # noqa: E731
    assert torch.equal(run(4).values, run(4).values)
    assert torch.equal(run(torch.Generator().manual_seed(4)).values, run(4).values)


BAD = [
    ("k", {"k": 0}, "k must be an int >= 1"),
    ("k_over_dim", {"k": 11}, "k must be <= dim"),
    (
        "which",
        {"which": "XX"},
        "unknown eigenvalue order \\(which\\) .XX.; choose one of: LA, SA, LM, BE",
    ),
    ("tol", {"tol": -1.0}, "tol must be a finite number > 0"),
    ("max_iter", {"max_iter": 0}, "max_iter must be an int >= 1"),
]


@pytest.mark.parametrize(("what", "kwargs", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_arguments(what: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        lanczos(lambda v: v, 10, **kwargs)
