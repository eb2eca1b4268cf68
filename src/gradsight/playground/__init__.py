"""2D loss surfaces and the paths real optimizers take over them (PNG, GIF, summary table)."""

from gradsight.playground.figures import plot_trajectories, save_animation
from gradsight.playground.run import DEFAULT_OPTIMIZERS, PlaygroundResult, playground
from gradsight.playground.summary import SummaryRow, format_table, summarize
from gradsight.playground.surfaces import SURFACES, Surface, get_surface
from gradsight.playground.trajectory import Trajectory, run_trajectory

__all__ = [
    "DEFAULT_OPTIMIZERS",
    "SURFACES",
    "PlaygroundResult",
    "SummaryRow",
    "Surface",
    "Trajectory",
    "format_table",
    "get_surface",
    "playground",
    "plot_trajectories",
    "run_trajectory",
    "save_animation",
    "summarize",
]
