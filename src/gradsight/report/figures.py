"""The report's figures: one function per plot kind, and the list the report draws from.

```python
from gradsight.report import figures
fig = figures.gradient_flow_heatmap(history)     # a matplotlib Figure, or None
figures.save_figures(history, "runs/demo/figures")
```

Figures are drawn on matplotlib's Agg canvas without pyplot, so nothing is left open in
pyplot's global state and the user's backend is untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from gradsight.drawing import to_png
from gradsight.files import write_atomic
from gradsight.report.activation_figures import (
    activation_histograms_figure,
    activation_stats_figure,
    temporal_gradient_flow,
)
from gradsight.report.training_figures import (
    curvature_figure,
    gradient_flow_bars,
    gradient_flow_heatmap,
    loss_figure,
    update_ratio_figure,
)
from gradsight.telemetry import History

FigureFunction = Callable[..., Figure | None]


@dataclass(frozen=True)
class FigureSpec:
    """One figure of the report: its file stem, title, caption and drawing function."""

    name: str
    title: str
    caption: str
    draw: FigureFunction


@dataclass(frozen=True)
class RenderedFigure:
    """A drawn figure as PNG bytes, with its spec."""

    spec: FigureSpec
    png: bytes


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec(
        "loss",
        "Loss",
        "Training loss per step (log scale when positive) and the test metrics at each "
        "evaluation. A flat curve from the start means the network is not learning.",
        loss_figure,
    ),
    FigureSpec(
        "gradient_flow_heatmap",
        "Gradient flow",
        "log10 of each layer's gradient norm over steps, input layer at the top. A dark band "
        "over the early layers is the signature of vanishing gradients; a bright band that "
        "grows, of exploding ones.",
        gradient_flow_heatmap,
    ),
    FigureSpec(
        "gradient_flow_bars",
        "Gradient norm per layer",
        "Each layer's gradient norm at the first and the last logged step (log scale). In a "
        "healthy net the bars are of similar height; a staircase falling towards the input "
        "means the early layers barely learn.",
        gradient_flow_bars,
    ),
    FigureSpec(
        "activations",
        "Activation statistics",
        "Mean, standard deviation, saturated fraction (sigmoid/tanh) and dead-unit fraction "
        "(ReLU family) of each layer's output over steps; darker lines are closer to the input.",
        activation_stats_figure,
    ),
    FigureSpec(
        "activation_histograms",
        "Activation histograms",
        "Distribution of each layer's outputs over time (fixed bins: [0, 1] for sigmoid, "
        "[-1, 1] for tanh, [-4, 4] otherwise). Mass piling into the end bins means saturation.",
        activation_histograms_figure,
    ),
    FigureSpec(
        "update_ratio",
        "Update / weight ratio",
        "Size of each step's update relative to the weights, per layer (log scale). The "
        "dashed line is the 1e-3 rule of thumb: far below learns slowly, far above is unstable.",
        update_ratio_figure,
    ),
    FigureSpec(
        "temporal_gradient_flow",
        "Gradient flow through time",
        "Norm of the loss gradient with respect to the hidden state h_t at each time step t. "
        "A line falling towards t = 0 means early inputs receive no gradient.",
        temporal_gradient_flow,
    ),
    FigureSpec(
        "curvature",
        "Curvature",
        "Extreme eigenvalues of the loss Hessian (and its trace) over steps. A negative "
        "smallest eigenvalue with small gradients marks a saddle point.",
        curvature_figure,
    ),
)


def render_figures(history: History, *, dpi: int = 100) -> list[RenderedFigure]:
    """Every figure of `FIGURES` whose metrics are present, as PNG bytes, in report order."""
    rendered = []
    for spec in FIGURES:
        fig = spec.draw(history)
        if fig is not None:
            rendered.append(RenderedFigure(spec, to_png(fig, dpi=dpi)))
    return rendered


def write_pngs(rendered: list[RenderedFigure], folder: str | Path) -> list[Path]:
    """Write rendered figures as `folder/NAME.png`; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for figure in rendered:
        path = folder / f"{figure.spec.name}.png"
        write_atomic(path, figure.png)
        paths.append(path)
    return paths


def save_figures(history: History, folder: str | Path, *, dpi: int = 100) -> list[Path]:
    """Write every figure whose metrics are present as `folder/NAME.png` (a run's `figures/`).

    Returns:
        The paths written, in report order.
    """
    return write_pngs(render_figures(history, dpi=dpi), folder)


__all__ = [
    "FIGURES",
    "FigureSpec",
    "RenderedFigure",
    "activation_histograms_figure",
    "activation_stats_figure",
    "curvature_figure",
    "gradient_flow_bars",
    "gradient_flow_heatmap",
    "loss_figure",
    "render_figures",
    "save_figures",
    "temporal_gradient_flow",
    "update_ratio_figure",
    "write_pngs",
]
