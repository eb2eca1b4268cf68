"""2D loss surfaces with known geometry: where the minima and the saddles are.

Each surface is a function of two coordinates written with torch operations, so the same code
gives the loss of a 2-element parameter (autograd gives its gradient) and of a whole grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from gradsight.errors import InputError

Point = tuple[float, float]


@dataclass(frozen=True)
class Surface:
    """A loss surface f(x, y) and what is known about it.

    Attributes:
        name: Registry name.
        fn: f(x, y) on tensors of any (matching) shape.
        start: Default start point.
        bounds: The view ((x_min, x_max), (y_min, y_max)).
        minima: Global minima (may be empty: the surface is unbounded below).
        saddles: Saddle points (gradient zero, neither minimum nor maximum).
        min_value: f at the global minima, None when unbounded below.
        lr: Default learning rate of the plain gradient rules (sgd, momentum, nag).
        adaptive_lr: Default learning rate of the adaptive rules (adagrad, rmsprop, adam, ...).
        steps: Default number of steps.
        description: One line for people.
    """

    name: str
    fn: Callable[[Tensor, Tensor], Tensor]
    start: Point
    bounds: tuple[Point, Point]
    minima: tuple[Point, ...] = ()
    saddles: tuple[Point, ...] = ()
    min_value: float | None = None
    lr: float = 0.01
    adaptive_lr: float = 0.05
    steps: int = 200
    description: str = ""

    def __call__(self, w: Tensor) -> Tensor:
        """f at a parameter w of shape (2,), or at points (..., 2)."""
        return self.fn(w[..., 0], w[..., 1])


def saddle(x: Tensor, y: Tensor) -> Tensor:
    """x^2 - y^2: a minimum along x, a maximum along y, a saddle at 0 (Hessian diag(2, -2))."""
    return x**2 - y**2


def monkey_saddle(x: Tensor, y: Tensor) -> Tensor:
    """x^3 - 3 x y^2: a degenerate saddle at 0 (zero Hessian), three ways down."""
    return x**3 - 3 * x * y**2


def ill_conditioned(x: Tensor, y: Tensor) -> Tensor:
    """(x^2 + 25 y^2) / 2: an elongated ellipse, condition number 25, minimum 0 at 0."""
    return 0.5 * (x**2 + 25 * y**2)


def rosenbrock(x: Tensor, y: Tensor) -> Tensor:
    """(1 - x)^2 + 100 (y - x^2)^2 (Rosenbrock 1960): a curved valley, minimum 0 at (1, 1)."""
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def beale(x: Tensor, y: Tensor) -> Tensor:
    """(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2: minimum 0 at (3, 0.5)."""
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def himmelblau(x: Tensor, y: Tensor) -> Tensor:
    """(x^2 + y - 11)^2 + (x + y^2 - 7)^2 (Himmelblau 1972): four minima of 0, four saddles."""
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


def plateau(x: Tensor, y: Tensor) -> Tensor:
    """1 - exp(-(x^2 + y^2)): a well in a flat plain; far out the gradient all but vanishes."""
    return 1 - torch.exp(-(x**2 + y**2))


SURFACES: dict[str, Surface] = {
    s.name: s
    for s in (
        Surface(
            "saddle",
            saddle,
            start=(1.0, 1e-3),  # on the ridge line y = 0, nudged off it (on it, none can leave)
            bounds=((-1.5, 1.5), (-1.5, 1.5)),
            saddles=((0.0, 0.0),),
            lr=0.05,
            adaptive_lr=0.05,
            steps=120,
            description="x^2 - y^2: the saddle of the famous animation",
        ),
        Surface(
            "monkey_saddle",
            monkey_saddle,
            start=(1.0, 1e-3),
            bounds=((-1.5, 1.5), (-1.5, 1.5)),
            saddles=((0.0, 0.0),),
            lr=0.02,
            adaptive_lr=0.05,
            steps=150,
            description="x^3 - 3xy^2: a flat, degenerate saddle",
        ),
        Surface(
            "ill_conditioned",
            ill_conditioned,
            start=(-4.5, 1.0),
            bounds=((-5.0, 5.0), (-2.0, 2.0)),
            minima=((0.0, 0.0),),
            min_value=0.0,
            lr=0.03,  # NAG with momentum 0.9 is stable for lr * 25 < 1.36
            adaptive_lr=0.2,
            steps=150,
            description="(x^2 + 25 y^2) / 2: a narrow valley, condition number 25",
        ),
        Surface(
            "rosenbrock",
            rosenbrock,
            start=(-1.2, 1.0),
            bounds=((-2.0, 2.0), (-1.0, 3.0)),
            minima=((1.0, 1.0),),
            min_value=0.0,
            lr=5e-4,
            adaptive_lr=0.02,
            steps=500,
            description="Rosenbrock's banana: a curved, flat-bottomed valley",
        ),
        Surface(
            "beale",
            beale,
            start=(1.0, 1.0),
            bounds=((-4.5, 4.5), (-4.5, 4.5)),
            minima=((3.0, 0.5),),
            min_value=0.0,
            lr=1e-3,
            adaptive_lr=0.05,
            steps=300,
            description="Beale's function: sharp ridges, flat arms",
        ),
        Surface(
            "himmelblau",
            himmelblau,
            start=(0.0, 0.0),
            bounds=((-5.0, 5.0), (-5.0, 5.0)),
            minima=(
                (3.0, 2.0),
                (-2.805118, 3.131312),
                (-3.779310, -3.283186),
                (3.584428, -1.848126),
            ),
            saddles=(
                (3.385154, 0.073852),
                (-0.127961, -1.953715),
                (-3.073026, -0.081353),
                (0.086678, 2.884255),
            ),
            min_value=0.0,
            lr=0.01,
            adaptive_lr=0.1,
            steps=200,
            description="Himmelblau's function: four minima; the path decides which one",
        ),
        Surface(
            "plateau",
            plateau,
            start=(2.2, 1.5),
            bounds=((-3.0, 3.0), (-3.0, 3.0)),
            minima=((0.0, 0.0),),
            min_value=0.0,
            lr=0.1,
            adaptive_lr=0.05,
            steps=200,
            description="1 - exp(-r^2): a flat plain around a well",
        ),
    )
}


def get_surface(name: str) -> Surface:
    """The surface called `name`."""
    if name not in SURFACES:
        raise InputError(f"unknown surface {name!r}; choose one of: {', '.join(SURFACES)}")
    return SURFACES[name]
