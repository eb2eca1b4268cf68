"""The summary table of a playground run: one row per optimizer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from gradsight.playground.surfaces import Surface
from gradsight.playground.trajectory import Trajectory, escaped, steps_near, steps_to_tolerance

# A path "reached" the minimum once f - f_min <= this.
TOLERANCE = 1e-3
# "Near the saddle" is within this distance of it.
SADDLE_RADIUS = 0.5


@dataclass(frozen=True)
class SummaryRow:
    """What one optimizer's path did.

    Attributes:
        optimizer: Its name.
        lr: Its learning rate.
        steps: Steps taken.
        final_loss: f at the last position.
        steps_to_tol: First step with f - f_min <= tolerance (None: never, or no minimum).
        escaped: Ended away from every saddle and below it (None: the surface has no saddle).
        steps_near_saddle: Steps spent within `SADDLE_RADIUS` of a saddle.
        path_length: Sum of the step lengths.
    """

    optimizer: str
    lr: float
    steps: int
    final_loss: float
    steps_to_tol: int | None
    escaped: bool | None
    steps_near_saddle: int
    path_length: float


def summarize(
    surface: Surface,
    trajectories: Sequence[Trajectory],
    tol: float = TOLERANCE,
    radius: float = SADDLE_RADIUS,
) -> list[SummaryRow]:
    """One `SummaryRow` per trajectory."""
    return [
        SummaryRow(
            optimizer=t.optimizer,
            lr=t.lr,
            steps=len(t.points) - 1,
            final_loss=float(t.losses[-1]),
            steps_to_tol=steps_to_tolerance(t, surface.min_value, tol),
            escaped=escaped(t, surface, radius),
            steps_near_saddle=steps_near(t, surface.saddles, radius),
            path_length=t.path_length,
        )
        for t in trajectories
    ]


def summary_cells(rows: Sequence[SummaryRow]) -> tuple[list[str], list[list[str]]]:
    """The header and each row's cells as text (numbers to 3-4 significant digits, "-" for
    a quantity the surface does not define)."""
    header = ["optimizer", "lr", "steps", "final_loss", "steps_to_tol", "escaped",
              "near_saddle", "path_length"]  # fmt: skip
    cells = []
    for row in rows:
        values = asdict(row)
        cells.append([
            row.optimizer,
            f"{row.lr:.3g}",
            str(row.steps),
            f"{row.final_loss:.4g}",
            "-" if row.steps_to_tol is None else str(row.steps_to_tol),
            "-" if row.escaped is None else ("yes" if values["escaped"] else "no"),
            str(row.steps_near_saddle),
            f"{row.path_length:.3g}",
        ])  # fmt: skip
    return header, cells


def format_table(rows: Sequence[SummaryRow]) -> str:
    """The rows as an aligned plain-text table."""
    header, cells = summary_cells(rows)
    lines = [header, *cells]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
