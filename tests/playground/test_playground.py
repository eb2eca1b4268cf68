"""Surfaces have the geometry they claim; real optimizers race over them; files are valid."""

import pytest
import torch
from PIL import Image

import gradsight.optim  # noqa: F401  (registers lamb for the race)
from gradsight.playground import (
    SURFACES,
    format_table,
    get_surface,
    playground,
    run_trajectory,
    summarize,
)

# id, surface, point, kind ("min": gradient 0 and f = min_value; "saddle": gradient 0 and
# both lower and higher points nearby)
POINTS = [
    (f"{s.name}-{kind}-{i}", s.name, p, kind)
    for s in SURFACES.values()
    for kind, points in (("min", s.minima), ("saddle", s.saddles))
    for i, p in enumerate(points)
]


@pytest.mark.parametrize(
    ("name", "point", "kind"), [c[1:] for c in POINTS], ids=[c[0] for c in POINTS]
)
def test_surface_geometry_is_as_documented(name, point, kind):
    surface = SURFACES[name]
    w = torch.tensor(point, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(surface(w), w)
    # Himmelblau's points are given to 6 decimals: the gradient there is only about 1e-4.
    assert grad.abs().max() < 1e-3
    angles = torch.linspace(0, 2 * torch.pi, 13, dtype=torch.float64)[:-1]
    around = w.detach() + 1e-2 * torch.stack([angles.cos(), angles.sin()], dim=1)  # (12, 2)
    change = surface(around) - surface(w.detach())
    if kind == "min":
        assert surface(w).item() == pytest.approx(surface.min_value, abs=1e-9)
        assert (change > 0).all()
    else:
        assert (change > 0).any() and (change < 0).any()


def test_on_the_saddle_sgd_lingers_longer_than_momentum_and_adam():
    """From the ridge line, the escape direction -y^2 grows like (1 + 2 lr)^t for SGD;
    momentum accumulates it and Adam normalises it away, so both leave sooner."""
    result = playground("saddle", ["sgd", "momentum", "adam"], out_dir=None)
    near = {row.optimizer: row.steps_near_saddle for row in result.summary}
    assert near["sgd"] > 2 * near["momentum"]
    assert near["sgd"] > 2 * near["adam"]
    assert all(row.escaped for row in result.summary)


def test_on_the_plateau_adam_finds_the_well_and_sgd_does_not():
    result = playground("plateau", ["sgd", "adam"], out_dir=None)
    rows = {row.optimizer: row for row in result.summary}
    assert rows["sgd"].final_loss > 0.99 and rows["sgd"].steps_to_tol is None
    assert rows["adam"].final_loss < 1e-3 and rows["adam"].steps_to_tol is not None


def test_trajectory_is_the_optimizers_own_steps():
    surface = get_surface("ill_conditioned")
    path = run_trajectory(surface, "sgd", lr=0.01, steps=3)
    x, y = surface.start
    for step in range(1, 4):
        x, y = x - 0.01 * x, y - 0.01 * 25 * y  # gradient (x, 25 y)
        assert path.points[step] == pytest.approx([x, y], rel=1e-12)
    assert path.losses[-1] == pytest.approx(0.5 * (x**2 + 25 * y**2), rel=1e-12)


def test_summary_reports_tolerance_escape_and_length():
    surface = get_surface("ill_conditioned")
    path = run_trajectory(surface, "rmsprop", steps=40)
    (row,) = summarize(surface, [path], tol=1e-2)
    assert row.escaped is None and row.steps_near_saddle == 0
    assert path.losses[row.steps_to_tol] <= 1e-2 < path.losses[row.steps_to_tol - 1]
    straight = float(((path.points[-1] - path.points[0]) ** 2).sum() ** 0.5)
    assert row.path_length >= straight
    table = format_table([row]).splitlines()
    assert table[0].split()[:3] == ["optimizer", "lr", "steps"] and table[1].startswith("rmsprop")


def test_writes_a_png_and_an_animated_gif(tmp_path):
    result = playground("saddle", ["sgd", "lamb"], out_dir=tmp_path, steps=20, frames=4)
    assert result.png == tmp_path / "saddle.png" and result.gif == tmp_path / "saddle.gif"
    with Image.open(result.png) as png:
        assert png.format == "PNG" and png.size[0] > 100
    with Image.open(result.gif) as gif:
        assert gif.format == "GIF" and gif.n_frames >= 3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: get_surface("bowl"), "unknown surface 'bowl'; choose one of: saddle"),
        (lambda: playground("saddle", [], out_dir=None), "at least one optimizer"),
        (lambda: playground("saddle", ["sgd"], lrs={"adam": 0.1}, out_dir=None), "not run: adam"),
        (lambda: run_trajectory(SURFACES["saddle"], "sgd", steps=0), "steps must be >= 1, got 0"),
        (lambda: run_trajectory(SURFACES["saddle"], "adamax"), "unknown optimizer 'adamax'"),
        (lambda: playground("saddle", ["sgd"], out_dir="unused", frames=1), "frames must be >= 2"),
    ],
    ids=["surface", "no-optimizer", "lr-not-run", "steps", "optimizer", "frames"],
)
def test_bad_arguments_name_the_value(call, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        call()
