"""SLQ density against the exact spectrum; landscape slices; their figures."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from gradsight.curvature import (
    Landscape,
    density,
    filter_normalized,
    landscape,
    plot_density,
    plot_landscape,
)

from .cases import exact_hessian, make_case


def test_slq_density_integrates_to_one_and_spans_the_spectrum(tmp_path) -> None:
    case = make_case("mlp_tanh")
    exact = torch.linalg.eigvalsh(exact_hessian(case))
    result = density(case.model, case.loss_fn, case.batch, runs=2, steps=46, seed=0)
    dt = float(result.grid[1] - result.grid[0])
    assert abs(float(result.density.sum()) * dt - 1.0) < 1e-2
    # With steps = n the quadrature nodes are the eigenvalues themselves.
    assert abs(float(result.nodes.max()) - float(exact.max())) < 1e-6
    assert abs(float(result.nodes.min()) - float(exact.min())) < 1e-6
    # The spectral moments match: E[t] = tr(H) / n.
    mean = float((result.nodes * result.weights).sum() / result.weights.sum())
    assert abs(mean - float(exact.mean())) < 0.1 * float(exact.abs().max())
    figure = plot_density(result, tmp_path / "density.png")
    assert isinstance(figure, Figure)
    assert (tmp_path / "density.png").stat().st_size > 0


def test_filter_normalized_direction_matches_each_filter_norm() -> None:
    case = make_case("mlp_tanh")
    params = list(case.model.parameters())
    directions = filter_normalized(params, torch.Generator().manual_seed(0))
    for p, d in zip(params, directions, strict=True):
        if p.dim() == 1:
            assert torch.count_nonzero(d) == 0
        else:
            torch.testing.assert_close(d.norm(dim=1), p.detach().norm(dim=1))


def test_landscape_passes_through_the_current_loss_and_restores_weights(tmp_path) -> None:
    case = make_case("batchnorm_eval")
    before = [p.detach().clone() for p in case.model.parameters()]
    line = landscape(case.model, case.loss_fn, case.batch, dims=1, steps=5)
    plane = landscape(case.model, case.loss_fn, case.batch, dims=2, steps=5)
    loss = float(case.loss_fn(case.model(case.x), case.y))
    assert abs(float(line.losses[2]) - loss) < 1e-12  # the middle point is the model itself
    assert abs(float(plane.losses[2, 2]) - loss) < 1e-12
    assert plane.losses.shape == (5, 5)
    for p, p0 in zip(case.model.parameters(), before, strict=True):
        assert torch.equal(p, p0)
    for result, name in ((line, "line.png"), (plane, "plane.png")):
        assert isinstance(plot_landscape(result, tmp_path / name), Figure)
        assert (tmp_path / name).exists()


def test_landscape_rejects_three_dims() -> None:
    case = make_case("mlp_tanh")
    try:
        landscape(case.model, F.cross_entropy, case.batch, dims=3)
    except ValueError as error:
        assert "dims must be 1 or 2, got 3" in str(error)
    else:
        raise AssertionError("no error")
    assert Landscape._fields == ("alphas", "betas", "losses")
