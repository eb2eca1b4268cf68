"""Real optimizers (by gradsight name) on a 2-element parameter, and what their paths show."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gradsight.errors import InputError
from gradsight.playground.surfaces import Point, Surface
from gradsight.train.optimizers import build_optimizer

# The rules whose default learning rate is the surface's `lr`; the others take `adaptive_lr`.
PLAIN_RULES = frozenset({"sgd", "momentum", "nag"})
# A run stops once it is this many view-widths away from the view (it has left for good).
ESCAPE_FACTOR = 3.0


@dataclass(frozen=True)
class Trajectory:
    """One optimizer's path.

    Attributes:
        optimizer: The optimizer's name.
        lr: Its learning rate.
        points: Positions, (steps taken + 1, 2), the start first.
        losses: f at each position, (steps taken + 1,).
    """

    optimizer: str
    lr: float
    points: np.ndarray
    losses: np.ndarray

    @property
    def path_length(self) -> float:
        """Sum of the step lengths ||w_(t+1) - w_t||."""
        return float(np.linalg.norm(np.diff(self.points, axis=0), axis=1).sum())


def run_trajectory(
    surface: Surface,
    optimizer: str,
    lr: float | None = None,
    steps: int | None = None,
    start: Point | None = None,
    **options: Any,
) -> Trajectory:
    """Minimise `surface` from `start` with the optimizer called `optimizer`, in float64.

    Args:
        surface: The loss surface.
        optimizer: A name of `gradsight.train.OPTIMIZERS`.
        lr: Learning rate; default the surface's `lr` (plain rules) or `adaptive_lr`.
        steps: Steps to take (default the surface's); fewer if the path leaves the view far
            behind or the loss is no longer finite.
        start: Start point (default the surface's).
        **options: Other arguments of the optimizer (momentum, betas, ...).
    """
    steps = surface.steps if steps is None else steps
    if steps < 1:
        raise InputError(f"steps must be >= 1, got {steps}")
    if lr is None:
        lr = surface.lr if optimizer in PLAIN_RULES else surface.adaptive_lr
    w = torch.tensor(start or surface.start, dtype=torch.float64, requires_grad=True)  # (2,)
    opt = build_optimizer(optimizer, [w], lr, **options)
    (x0, x1), (y0, y1) = surface.bounds
    limit = ESCAPE_FACTOR * max(x1 - x0, y1 - y0)
    points, losses = [w.detach().clone()], []
    for _ in range(steps):
        loss = surface(w)
        losses.append(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
        points.append(w.detach().clone())
        if not torch.isfinite(w).all() or w.detach().abs().max() > limit:
            break
    losses.append(surface(w.detach()))
    # Scalars on the CPU: one conversion at the end instead of one per step.
    return Trajectory(optimizer, lr, torch.stack(points).numpy(), torch.stack(losses).numpy())


def steps_to_tolerance(trajectory: Trajectory, min_value: float | None, tol: float) -> int | None:
    """First step t with f(w_t) - min_value <= tol; None if never, or without a minimum."""
    if min_value is None:
        return None
    hits = np.flatnonzero(trajectory.losses - min_value <= tol)
    return int(hits[0]) if len(hits) else None


def steps_near(trajectory: Trajectory, points: Sequence[Point], radius: float) -> int:
    """Steps spent within `radius` of the nearest of `points` (0 when there are none)."""
    if not points:
        return 0
    distance = _nearest_distance(trajectory.points, points)
    return int((distance < radius).sum())


def escaped(trajectory: Trajectory, surface: Surface, radius: float) -> bool | None:
    """Whether the path ends beyond `radius` from every saddle and below the saddles' loss.

    None for a surface without saddles.
    """
    if not surface.saddles:
        return None
    end = trajectory.points[-1]
    saddle_loss = min(float(surface(torch.tensor(s, dtype=torch.float64))) for s in surface.saddles)
    far = _nearest_distance(end[None], surface.saddles)[0] > radius
    return bool(
        far and trajectory.losses[-1] < saddle_loss and math.isfinite(trajectory.losses[-1])
    )


def _nearest_distance(points: np.ndarray, targets: Sequence[Point]) -> np.ndarray:
    """Distance of each of `points` (N, 2) to the nearest of `targets`: (N,)."""
    diff = points[:, None, :] - np.asarray(targets, dtype=float)[None]  # (N, K, 2)
    return np.linalg.norm(diff, axis=-1).min(axis=1)
