"""Drawing the paths over the surface's contours: a static figure and an animated GIF."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gradsight.errors import InputError
from gradsight.playground.surfaces import Surface
from gradsight.playground.trajectory import Trajectory

CONTOUR_LEVELS = 30


def plot_trajectories(
    surface: Surface,
    trajectories: Sequence[Trajectory],
    *,
    size: tuple[float, float] = (6.0, 5.0),
    dpi: int = 100,
    grid: int = 200,
) -> Figure:
    """The surface's contours with every path, one colour each, and a legend."""
    fig, ax = _new_axes(surface, size, dpi, grid)
    for trajectory, colour in zip(trajectories, _colours(len(trajectories)), strict=True):
        points = trajectory.points
        ax.plot(points[:, 0], points[:, 1], color=colour, lw=1.6, label=trajectory.optimizer)
        ax.plot(*points[-1], "o", color=colour, ms=5)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def save_animation(
    surface: Surface,
    trajectories: Sequence[Trajectory],
    path: str | Path,
    *,
    frames: int = 40,
    fps: int = 12,
    size: tuple[float, float] = (5.0, 4.2),
    dpi: int = 80,
    grid: int = 120,
) -> Path:
    """Write an animated GIF of the paths growing step by step (Pillow writer); returns `path`."""
    if frames < 2:
        raise InputError(f"frames must be >= 2, got {frames}")
    fig, ax = _new_axes(surface, size, dpi, grid)
    longest = max(len(t.points) for t in trajectories)
    ends = np.unique(np.linspace(1, longest, frames).round().astype(int))  # steps shown per frame
    artists = []
    for trajectory, colour in zip(trajectories, _colours(len(trajectories)), strict=True):
        (line,) = ax.plot([], [], color=colour, lw=1.6, label=trajectory.optimizer)
        (head,) = ax.plot([], [], "o", color=colour, ms=6)
        artists.append((trajectory.points, line, head))
    ax.legend(loc="upper left", fontsize=7)
    title = ax.set_title("")

    def draw(end: int) -> list:
        for points, line, head in artists:
            shown = points[:end]  # a finished path stays where it stopped
            line.set_data(shown[:, 0], shown[:, 1])
            head.set_data(shown[-1:, 0], shown[-1:, 1])
        title.set_text(f"{surface.name}: step {end - 1}")
        return [a for _, line, head in artists for a in (line, head)] + [title]

    animation = FuncAnimation(fig, draw, frames=ends, blit=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    animation.save(path, writer=PillowWriter(fps=fps))
    return path


def _new_axes(
    surface: Surface, size: tuple[float, float], dpi: int, grid: int
) -> tuple[Figure, Axes]:
    """A Figure (Agg, outside pyplot) with the surface's contours, minima and saddles."""
    fig = Figure(figsize=size, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    (x0, x1), (y0, y1) = surface.bounds
    xs = torch.linspace(x0, x1, grid, dtype=torch.float64)
    ys = torch.linspace(y0, y1, grid, dtype=torch.float64)
    x, y = torch.meshgrid(xs, ys, indexing="xy")  # (G, G) each
    z = surface.fn(x, y).numpy()  # (G, G)
    # Levels at quantiles of the grid's values: even spacing in area, so steep surfaces
    # (Rosenbrock, Beale) show their valleys as well as flat ones show their plateaus.
    levels = np.unique(np.quantile(z, np.linspace(0, 1, CONTOUR_LEVELS)))
    ax.contourf(x.numpy(), y.numpy(), z, levels=levels, cmap="Greys_r", alpha=0.35)
    ax.contour(x.numpy(), y.numpy(), z, levels=levels, colors="grey", linewidths=0.4)
    for px, py in surface.minima:
        ax.plot(px, py, "*", color="gold", mec="black", ms=12, zorder=5)
    for px, py in surface.saddles:
        ax.plot(px, py, "X", color="white", mec="black", ms=8, zorder=5)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(surface.description or surface.name, fontsize=9)
    return fig, ax


def _colours(n: int) -> list:
    """n distinct colours (tab10)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]
