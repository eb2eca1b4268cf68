"""Small readers of a History shared by the rules."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gradsight.data.task import Task
from gradsight.diagnosis import thresholds as th
from gradsight.diagnosis.thresholds import LOSS_WINDOW
from gradsight.telemetry.history import History

TIME_STEP = re.compile(r"^(?P<tap>.+)\[(?P<t>\d+)\]$")


@dataclass(frozen=True)
class Context:
    """What a rule may look at besides the History (each part optional)."""

    task: Task | None = None


def table(history: History, name: str, last: float = 1.0) -> pd.DataFrame:
    """Wide table step x layer of one metric, restricted to the last `last` fraction of steps."""
    wide = history.table(name)
    if last < 1.0 and len(wide):
        wide = wide.iloc[int(len(wide) * (1 - last)) :]
    return wide


def depth_layers(history: History) -> list[str]:
    """Weight layers in forward order: those with gradient norms and a measured output
    (Linear/Conv), or all layers with gradient norms when activations were not recorded."""
    layers = history.layers("grad/norm")
    measured = set(history.layers("act/grad_norm")) | set(history.layers("act/mean"))
    inner = [layer for layer in layers if layer in measured]
    return inner if len(inner) >= 2 else layers


def error_norms(history: History) -> tuple[pd.DataFrame, str, list[str]]:
    """Norms of the back-propagated error per weight layer (input to output), step x layer.

    The gradient at each Linear/Conv output, dL/dz_l (`act/grad_norm`), is the quantity of
    the theory; where activations were not recorded, the layers' parameter gradient norms
    stand in (they also carry the layer's input scale).

    Returns:
        The table, the metric it comes from, and the layers.
    """
    layers = depth_layers(history)
    if "act/grad_norm" in history and all(
        layer in history.layers("act/grad_norm") for layer in layers
    ):
        return table(history, "act/grad_norm")[layers].dropna(), "act/grad_norm", layers
    return table(history, "grad/norm")[layers], "grad/norm", layers


def median_ratio(norms: pd.DataFrame, first: str, last: str) -> tuple[float, int] | None:
    """Median over steps of norms[first] / norms[last] (finite ratios only), and their count."""
    ratios = (norms[first] / norms[last]).replace([np.inf, -np.inf], np.nan).dropna()
    return (float(ratios.median()), len(ratios)) if len(ratios) else None


def time_steps(history: History) -> list[str]:
    """The `hidden_tap[t]` layers of act/grad_norm, ordered by t."""
    found = [
        (m, layer) for layer in history.layers("act/grad_norm") if (m := TIME_STEP.match(layer))
    ]
    return [layer for m, layer in sorted(found, key=lambda p: int(p[0]["t"]))]


def loss_ends(history: History) -> tuple[float, float, int]:
    """Smoothed loss at the start and at the end of the run (means of the first and last
    LOSS_WINDOW of steps, finite values only), and the number of steps."""
    loss = history.series("loss").to_numpy()
    window = max(1, int(len(loss) * LOSS_WINDOW))
    start, end = loss[:window], loss[-window:]
    start, end = start[np.isfinite(start)], end[np.isfinite(end)]
    first = float(start.mean()) if start.size else float("nan")
    last = float(end.mean()) if end.size else float("inf")
    return first, last, len(loss)


def fmt(value: float) -> str:
    """A number for a sentence: 3 significant digits, scientific when small or large."""
    return f"{value:.3g}"


# -- the run: optimizer and layer layout (History.meta) ----------------------------------------


def optimizer_info(history: History) -> dict[str, Any]:
    """`history.meta["optimizer"]` (telemetry.optimizer_info.describe_optimizer), or {}."""
    info = getattr(history, "meta", {}).get("optimizer")
    return info if isinstance(info, dict) else {}


def adaptive(history: History) -> bool:
    """Whether the optimizer scales its steps per parameter (Adam, AdamW, Adadelta, RMSprop,
    Adagrad, ...). Unknown optimizers, SGD and hand-written updates count as SGD."""
    return optimizer_info(history).get("family") == "adaptive"


def peak_lr(history: History) -> float | None:
    """The largest learning rate of the run: the logged `lr` series (group 0, so schedules
    count), else the optimizer's lr at the start; None when neither is known."""
    if "lr" in history:
        lr = history.series("lr").to_numpy()
        lr = lr[np.isfinite(lr)]
        if lr.size and lr.max() > 0:
            return float(lr.max())
    lr = optimizer_info(history).get("lr")
    return float(lr) if isinstance(lr, (int, float)) and lr > 0 else None


def warms_up(history: History) -> bool:
    """Whether the logged learning rate (group 0) starts below `WARMUP_START_FRACTION` of its
    peak and reaches the peak later: a warm-up is already in place."""
    if "lr" not in history:
        return False
    lr = history.series("lr").to_numpy()
    lr = lr[np.isfinite(lr)]
    if lr.size < 2 or not lr.max() > 0:
        return False
    return bool(lr[0] < th.WARMUP_START_FRACTION * lr.max() and np.argmax(lr) > 0)


def clipping(history: History) -> tuple[float, float] | None:
    """(ceiling, fraction of logged steps at it) when the logged global gradient norm has a
    ceiling: at least `CLIP_CEILING_COUNT` of its values equal to its maximum within
    `CLIP_CEILING_TOLERANCE` (clip_grad_norm_ scales every larger gradient to exactly that
    norm; the watch reads gradients as the optimizer gets them). None otherwise."""
    if "grad/norm_global" not in history:
        return None
    norms = history.series("grad/norm_global").to_numpy()
    norms = norms[np.isfinite(norms)]
    if norms.size < 3 or not norms.max() > 0:
        return None
    top = float(norms.max())
    at_top = int(np.sum(norms >= top * (1 - th.CLIP_CEILING_TOLERANCE)))
    return (top, at_top / norms.size) if at_top >= th.CLIP_CEILING_COUNT else None


def clipped_at(history: History) -> float | None:
    """The norm the gradients are clipped to (`clipping`), or None."""
    found = clipping(history)
    return found[0] if found else None


def normalised_steps(history: History) -> bool:
    """Whether the step's size does not follow the gradient's: an adaptive optimizer, or a
    gradient clipped on at least `CLIP_MOST_STEPS` of the logged steps (the step is then
    lr * clip_norm in size, whatever the gradient)."""
    if adaptive(history):
        return True
    found = clipping(history)
    return found is not None and found[1] >= th.CLIP_MOST_STEPS


def lr_text(lr: float) -> str:
    """A learning rate as people write it: 3e-2, 1.5e-3, 0.1, 20."""
    if lr >= 0.1 or lr <= 0:
        return f"{lr:g}"
    mantissa, exponent = f"{lr:.2e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def run_text(history: History) -> str | None:
    """The optimizer and its peak learning rate in words ("AdamW at lr 3e-2", "a hand-written
    update at lr 20", "SGD with momentum 0.9 at lr 0.1"); None when the optimizer is unknown."""
    info = optimizer_info(history)
    if not info:
        return None
    name = info.get("name") or "a hand-written update"
    if info.get("family") == "sgd" and info.get("momentum"):
        name += f" with momentum {info['momentum']:g}"
    lr = peak_lr(history)
    return f"{name} at lr {lr_text(lr)}" if lr is not None else name


@dataclass(frozen=True)
class LayerInfo:
    """What `history.meta["layers"]` says of one layer (its directly owned parameters).

    Attributes:
        params: Qualified parameter names.
        shapes: Their shapes.
        tied: Other modules that share a parameter with this one.
    """

    params: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    tied: tuple[str, ...]

    @property
    def owns_matrix(self) -> bool:
        """Whether the layer owns a weight matrix or kernel (a parameter with ndim >= 2)."""
        return any(len(shape) >= 2 for shape in self.shapes)


def layer_layout(history: History) -> dict[str, LayerInfo] | None:
    """`history.meta["layers"]` read as `LayerInfo`s; None on histories that lack it.

    Parameters shared between modules are owned by the first module that registers them:
    with tied input and output embeddings the decoder owns only its bias.
    """
    layers = getattr(history, "meta", {}).get("layers")
    if not isinstance(layers, dict) or not layers:
        return None
    layout = {}
    for name, entry in layers.items():
        if not isinstance(entry, dict):
            return None
        shapes = tuple(tuple(int(d) for d in shape) for shape in entry.get("shapes", ()))
        layout[str(name)] = LayerInfo(
            tuple(entry.get("params", ())), shapes, tuple(entry.get("tied", ()))
        )
    return layout


def matrix_layers(history: History, layers: list[str]) -> list[str]:
    """The layers among `layers` that own a weight matrix (ndim >= 2), by the History's layer
    layout; all of `layers` when the layout was not recorded (older histories)."""
    layout = layer_layout(history)
    if layout is None:
        return list(layers)
    return [layer for layer in layers if layer in layout and layout[layer].owns_matrix]


# -- update ratios and curvature ---------------------------------------------------------------


def update_ratios(history: History) -> pd.DataFrame | None:
    """`update/ratio` (step x layer) of the layers whose ratio says something of the rate:
    layers that own a weight matrix (`matrix_layers`; a bias alone, such as a decoder whose
    weight is tied to the embedding, moves by a large fraction of its small norm) and whose
    weight norm is not near zero (`RATIO_MIN_WEIGHT_NORM`). None when nothing is left."""
    if "update/ratio" not in history:
        return None
    ratios = table(history, "update/ratio").replace([np.inf, -np.inf], np.nan)
    layers = matrix_layers(history, list(ratios.columns))
    if "weight/norm" in history:  # a ratio to a near-zero weight says nothing of the rate
        weights = table(history, "weight/norm").median()
        layers = [c for c in layers if weights.get(c, np.nan) > th.RATIO_MIN_WEIGHT_NORM]
    ratios = ratios[layers].dropna(axis=1, how="all")
    return ratios if ratios.shape[1] else None


def update_ratio(history: History) -> tuple[float, str] | None:
    """The largest per-layer median update ratio over the last half of the logged steps, and
    its layer (layers as in `update_ratios`); None when updates were not recorded.

    The first half is left out: while the weights are still near a small initialisation any
    rate rewrites a large part of them per step; the rate is judged once the net has left it.
    """
    ratios = update_ratios(history)
    if ratios is None:
        return None
    medians = ratios.iloc[len(ratios) // 2 :].median().dropna()
    return (float(medians.max()), str(medians.idxmax())) if len(medians) else None


def peak_update_ratio(history: History) -> tuple[float, str] | None:
    """The largest logged update ratio of any layer (layers as in `update_ratios`), and its
    layer.

    For normalised steps (`normalised_steps`): an adaptive optimizer moves each weight by
    about lr whatever the gradient (exactly lr * sign(g) at the first step), a clipped one by
    lr * clip_norm in all, so the ratio is set by the rate against the weights' norm; it is
    largest before the weights have grown and falls roughly as 1 / t once the optimizer's own
    steps dominate them, so its median hides a step that was too large for the weights it
    started from. Measured against the weights after the step, it saturates near 1.
    """
    ratios = update_ratios(history)
    if ratios is None:
        return None
    peaks = ratios.max().dropna()
    return (float(peaks.max()), str(peaks.idxmax())) if len(peaks) else None


def sharpness(history: History) -> float | None:
    """The largest lr * lambda_max over steps where both were logged (None without curvature).

    Gradient descent is stable along the sharpest direction only while lr * lambda_max < 2;
    training at the "edge of stability" hovers there (Cohen et al. 2021).
    """
    if not ("curv/lambda_max" in history and "lr" in history):
        return None
    sharp = history.series("curv/lambda_max")
    lr = history.series("lr")
    steps = sharp.index.intersection(lr.index)
    return float((sharp[steps] * lr[steps]).max()) if len(steps) else None
