"""Activation statistics: reductions on the device, arithmetic on the host.

A forward hook turns a module's output into a few reductions (`reduce_output`, one kernel
each, no host sync). The reductions of every call of a step travel to the host together;
there `telemetry.activation_summary` derives the statistics of all modules at once.
Per-layer norms and maxima of per-parameter values (`layer_norms`, `layer_maxima`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

# A sigmoid or tanh unit is "saturated" when its local derivative is below this fraction of
# the derivative's maximum: the gradient through it is damped more than 20x. For the sigmoid,
# s' = s(1 - s) <= 1/4, so s(1 - s) < 0.0125, i.e. |s - 1/2| > 0.4873 (|x| > 4.36); for tanh,
# t' = 1 - t^2 <= 1, so |t| > 0.9747 (|x| > 2.18). LeCun et al. 1998 ("Efficient BackProp")
# on keeping units out of the flat regions of the sigmoid.
SATURATION_DERIVATIVE_FRACTION = 0.05
SIGMOID_SATURATED_DISTANCE = math.sqrt(0.25 - SATURATION_DERIVATIVE_FRACTION * 0.25)
TANH_SATURATED_ABS = math.sqrt(1 - SATURATION_DERIVATIVE_FRACTION)

# Kinds whose outputs are bounded and flat at the bounds: `act/saturated` is measured. A
# centred sigmoid, sigmoid(x) - 1/2, has the sigmoid's derivative around 0 instead of 1/2.
SATURATING_KINDS = ("sigmoid", "centered_sigmoid", "tanh")
_SATURATION_CENTRE_AND_DISTANCE = {
    "sigmoid": (0.5, SIGMOID_SATURATED_DISTANCE),
    "centered_sigmoid": (0.0, SIGMOID_SATURATED_DISTANCE),
    "tanh": (0.0, TANH_SATURATED_ABS),
}

# Fixed histogram ranges per saturating kind; values outside fall into the end bins.
HISTOGRAM_BINS = 20
HISTOGRAM_RANGES = {"sigmoid": (0.0, 1.0), "centered_sigmoid": (-0.5, 0.5), "tanh": (-1.0, 1.0)}
DEFAULT_HISTOGRAM_RANGE = (-4.0, 4.0)


def saturated_count(y: Tensor, kind: str) -> Tensor | None:
    """Number of outputs of a saturating kind in the flat region (0-d; None for other kinds);
    see SATURATION_DERIVATIVE_FRACTION."""
    if kind not in _SATURATION_CENTRE_AND_DISTANCE:
        return None
    centre, distance = _SATURATION_CENTRE_AND_DISTANCE[kind]
    # In-place comparisons on the temporary: about half the cost of allocating a bool mask.
    away = (y - centre).abs_() if centre else y.abs()
    return away.gt_(distance).sum()


@dataclass
class OutputReductions:
    """One call's reductions of a module output (`reduce_output`), still on the device.

    Attributes:
        norm: |y| over all values (0-d): its square is the sum of squares.
        count: Saturated values (saturating kinds) or values <= 0 (ReLU family) (0-d), else
            None.
        unit_sum: Sum per unit over the other dimensions (F,).
        unit_max: Max per unit (F,), ReLU family only.
        histogram: Counts in HISTOGRAM_BINS fixed bins, when asked for.
    """

    norm: Tensor
    count: Tensor | None
    unit_sum: Tensor
    unit_max: Tensor | None = None
    histogram: Tensor | None = None


@functools.cache
def _other_dims(dims: int, unit_dim: int) -> tuple[int, ...]:
    """The dimensions of a `dims`-D output other than its unit dimension."""
    unit_dim %= dims
    return tuple(d for d in range(dims) if d != unit_dim)


def reduce_output(y: Tensor, kind: str, unit_dim: int, histogram: bool) -> OutputReductions:
    """Reductions of one output `y` (B, ..., F, ...) on its device, one kernel each.

    Args:
        y: A module's output.
        kind: "sigmoid", "centered_sigmoid", "tanh" (saturation is measured), "relu" (the
            ReLU family: dead units and the zero fraction are measured), "smooth" (ELU, GELU,
            SiLU, ...) or "linear" (pre-activations).
        unit_dim: The dimension that indexes units (-1 for Linear layouts, 1 for conv).
        histogram: Also count the values into HISTOGRAM_BINS fixed bins.

    Returns:
        Everything is a sum across examples except the per-unit maxima, so the statistics of a
        batch split over processes combine exactly (a per-unit sum of squares would cost ~15x
        the global one on CPU).
    """
    y = y.detach()
    if y.dtype not in (torch.float32, torch.float64):
        y = y.float()  # half-precision sums lose too much
    if y.dim() < 2:
        y = y.reshape(-1, 1)
    others = _other_dims(y.dim(), unit_dim)
    reductions = OutputReductions(
        torch.linalg.vector_norm(y), saturated_count(y, kind), y.sum(others)
    )
    if kind == "relu":
        reductions.count = (y <= 0).sum()
        reductions.unit_max = y.amax(others)
    if histogram:
        low, high = HISTOGRAM_RANGES.get(kind, DEFAULT_HISTOGRAM_RANGE)
        reductions.histogram = torch.histc(y.float().clamp(low, high), HISTOGRAM_BINS, low, high)
    return reductions


def layer_norms(values: np.ndarray, owners: list[int], layers: int) -> np.ndarray:
    """Per-layer norms sqrt(sum of squares) from per-parameter norms; NaN where a layer had none."""
    values = np.asarray(values, dtype=np.float64)
    squares = np.bincount(owners, weights=values * values, minlength=layers)
    present = np.bincount(owners, minlength=layers) > 0
    return np.where(present, np.sqrt(squares), np.nan)


def layer_maxima(values: np.ndarray, owners: list[int], layers: int) -> np.ndarray:
    """Per-layer maxima from per-parameter maxima; NaN where a layer had none."""
    out = np.full(layers, -np.inf)
    with np.errstate(invalid="ignore"):  # NaN gradients stay NaN
        np.maximum.at(out, owners, np.asarray(values, dtype=np.float64))
    out[np.isneginf(out)] = np.nan
    return out
