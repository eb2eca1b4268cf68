"""Activation statistics: reductions on the device, arithmetic on the host.

A forward hook turns a module's output into a few per-unit reductions (`reduce_output`, one
kernel each, no host sync). After the step's single transfer to the host, `ActivationStats`
combines the reductions of every call (micro-batches of one step, the T calls of a recurrent
cell) and derives the statistics in float64 (`summarize`).
"""

from __future__ import annotations

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

# Fixed histogram ranges per activation kind; values outside fall into the end bins.
HISTOGRAM_BINS = 20
HISTOGRAM_RANGES = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}
DEFAULT_HISTOGRAM_RANGE = (-4.0, 4.0)


def saturated_count(y: Tensor, kind: str) -> Tensor | None:
    """Number of sigmoid/tanh outputs in the flat region (see SATURATION_DERIVATIVE_FRACTION)."""
    # In-place comparisons on the temporary: about half the cost of allocating a bool mask.
    if kind == "sigmoid":
        return (y - 0.5).abs_().gt_(SIGMOID_SATURATED_DISTANCE).sum().reshape(1)
    if kind == "tanh":
        return y.abs().gt_(TANH_SATURATED_ABS).sum().reshape(1)
    return None


def reduce_output(y: Tensor, kind: str, unit_dim: int, histogram: bool) -> list[Tensor]:
    """Per-unit reductions of one output `y` (B, ..., F, ...), as 1-D tensors on its device.

    Args:
        y: A module's output.
        kind: "sigmoid", "tanh", "relu" (the ReLU family: dead units and the zero fraction are
            measured), "smooth" (ELU, GELU, SiLU, ...) or "linear" (pre-activations).
        unit_dim: The dimension that indexes units (-1 for Linear layouts, 1 for conv).
        histogram: Also count the values into HISTOGRAM_BINS fixed bins.

    Returns:
        [sum per unit (F,), sum of squares of all values (1,)], then [saturated count (1,)]
        for sigmoid/tanh, [non-positive count (1,), max per unit (F,)] for the ReLU family,
        and [histogram (bins,)]. All are sums across examples except the per-unit maxima
        (see `REDUCE_OPS`), so the statistics of a batch split over processes combine exactly.
        (A per-unit sum of squares would cost ~15x the global one on CPU.)
    """
    y = y.detach()
    if y.dtype not in (torch.float32, torch.float64):
        y = y.float()  # half-precision sums lose too much
    if y.dim() < 2:
        y = y.reshape(-1, 1)
    unit_dim = unit_dim % y.dim()
    others = [d for d in range(y.dim()) if d != unit_dim]
    out = [y.sum(others), torch.linalg.vector_norm(y).square().reshape(1)]
    saturated = saturated_count(y, kind)
    if saturated is not None:
        out.append(saturated)
    if kind == "relu":
        out += [(y <= 0).sum().reshape(1), y.amax(others)]
    if histogram:
        low, high = HISTOGRAM_RANGES.get(kind, DEFAULT_HISTOGRAM_RANGE)
        out.append(torch.histc(y.float().clamp(low, high), HISTOGRAM_BINS, low, high))
    return out


def reduce_ops(kind: str, histogram: bool) -> list[str]:
    """How each tensor of `reduce_output` combines across processes: "sum" or "max"."""
    ops = ["sum", "sum"]
    if kind in ("sigmoid", "tanh"):
        ops.append("sum")
    if kind == "relu":
        ops += ["sum", "max"]
    if histogram:
        ops.append("sum")
    return ops


@dataclass
class ActivationStats:
    """Host-side accumulation of one module's reductions over the calls of one step.

    Attributes:
        kind: The activation kind (see `reduce_output`).
        count: Number of values seen.
        unit_sum: Per-unit sums (float64).
        sum_sq: Sum of squares of all values.
        rows: Values per unit.
        saturated: Number of saturated values (sigmoid/tanh).
        nonpositive: Number of values <= 0 (ReLU family).
        unit_max: Per-unit maxima (ReLU family).
        histogram: Bin counts, when histograms are on.
    """

    kind: str
    count: int = 0
    unit_sum: np.ndarray | None = None
    sum_sq: float = 0.0
    rows: int = 0
    saturated: float = 0.0
    nonpositive: float = 0.0
    unit_max: np.ndarray | None = None
    histogram: np.ndarray | None = None
    calls: int = 0

    def add(self, values: list[np.ndarray], count: int, histogram: bool) -> None:
        """Add one call's reductions (the host copies of `reduce_output`'s tensors)."""
        unit_sum, sum_sq, *rest = (np.asarray(v, dtype=np.float64) for v in values)
        self.count += count
        self.rows += count // max(len(unit_sum), 1)
        self.unit_sum = unit_sum if self.unit_sum is None else self.unit_sum + unit_sum
        self.sum_sq += float(sum_sq[0])
        if self.kind in ("sigmoid", "tanh"):
            self.saturated += float(rest.pop(0)[0])
        if self.kind == "relu":
            self.nonpositive += float(rest.pop(0)[0])
            unit_max = rest.pop(0)
            self.unit_max = (
                unit_max if self.unit_max is None else np.maximum(self.unit_max, unit_max)
            )
        if histogram:
            counts = rest.pop(0)
            self.histogram = counts if self.histogram is None else self.histogram + counts
        self.calls += 1

    def summarize(self, previous_unit_mean: np.ndarray | None) -> dict[str, float]:
        """The statistics of the module at this step.

        - `act/mean` = sum / n; `act/std` = sqrt(sum_sq / n - mean^2) (population std);
        - `act/saturated`: fraction of sigmoid/tanh values in the flat region;
        - `act/dead`: fraction of ReLU-family units whose output was <= 0 for every example;
        - `act/zero_frac`: fraction of ReLU-family values <= 0;
        - `act/drift`: mean over units of |mu_u - mu_u_prev| / std: the shift of each unit's
          mean since the last logged step, in units of the layer's spread (the measurable face
          of internal covariate shift, Ioffe & Szegedy 2015); only with a previous step.
        """
        n = max(self.count, 1)
        mean = self.unit_sum.sum() / n
        std = math.sqrt(max(self.sum_sq / n - mean**2, 0.0))
        out = {"act/mean": float(mean), "act/std": std}
        if self.kind in ("sigmoid", "tanh"):
            out["act/saturated"] = self.saturated / n
        if self.kind == "relu":
            out["act/dead"] = float(np.mean(self.unit_max <= 0))
            out["act/zero_frac"] = self.nonpositive / n
        unit_mean = self.unit_mean
        if previous_unit_mean is not None and previous_unit_mean.shape == unit_mean.shape:
            shift = float(np.mean(np.abs(unit_mean - previous_unit_mean)))
            out["act/drift"] = shift / std if std > 0 else (0.0 if shift == 0 else math.inf)
        return out

    @property
    def unit_mean(self) -> np.ndarray:
        """Per-unit means."""
        return self.unit_sum / max(self.rows, 1)


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
