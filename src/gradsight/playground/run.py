"""`playground`: run optimizers over a surface, draw the PNG and the GIF, summarise."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gradsight.errors import InputError
from gradsight.playground.figures import plot_trajectories, save_animation
from gradsight.playground.summary import SummaryRow, format_table, summarize
from gradsight.playground.surfaces import Point, Surface, get_surface
from gradsight.playground.trajectory import Trajectory, run_trajectory

DEFAULT_OPTIMIZERS = ("sgd", "momentum", "nag", "adagrad", "rmsprop", "adam")


@dataclass(frozen=True)
class PlaygroundResult:
    """What `playground` made.

    Attributes:
        surface: The surface.
        trajectories: One path per optimizer, in the order given.
        summary: One row per optimizer (`SummaryRow`).
        png: The static figure, when written.
        gif: The animation, when written.
    """

    surface: Surface
    trajectories: list[Trajectory]
    summary: list[SummaryRow]
    png: Path | None
    gif: Path | None

    @property
    def table(self) -> str:
        """The summary as an aligned plain-text table."""
        return format_table(self.summary)


def playground(
    surface: str | Surface = "saddle",
    optimizers: Sequence[str] = DEFAULT_OPTIMIZERS,
    *,
    out_dir: str | Path | None = ".",
    steps: int | None = None,
    lrs: Mapping[str, float] | None = None,
    start: Point | None = None,
    frames: int = 40,
    gif: bool = True,
) -> PlaygroundResult:
    """Race `optimizers` over `surface` and write `<surface>.png` and `<surface>.gif`.

    Args:
        surface: A name of `SURFACES` or a `Surface`.
        optimizers: Names of `gradsight.train.OPTIMIZERS`, each run from the same start.
        out_dir: Where the files go; None writes nothing.
        steps: Steps per optimizer (default the surface's).
        lrs: Learning rate per optimizer name (default the surface's lr / adaptive_lr).
        start: Start point (default the surface's).
        frames: Frames of the GIF.
        gif: Write the GIF too.

    Returns:
        A `PlaygroundResult`.
    """
    surface = get_surface(surface) if isinstance(surface, str) else surface
    if not optimizers:
        raise InputError("optimizers must name at least one optimizer, got none")
    lrs = dict(lrs or {})
    unknown = sorted(set(lrs) - set(optimizers))
    if unknown:
        raise InputError(f"lrs names optimizers that are not run: {', '.join(unknown)}")
    trajectories = [
        run_trajectory(surface, name, lrs.get(name), steps, start) for name in optimizers
    ]
    png = gif_path = None
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        png = out / f"{surface.name}.png"
        plot_trajectories(surface, trajectories).savefig(png)
        if gif:
            gif_path = save_animation(
                surface, trajectories, out / f"{surface.name}.gif", frames=frames
            )
    return PlaygroundResult(surface, trajectories, summarize(surface, trajectories), png, gif_path)
