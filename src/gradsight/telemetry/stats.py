"""On-device statistics of activations and parameters; no function here syncs with the host.

Activation statistics are gathered as additive sufficient statistics per forward call
(`ActivationSums`), so calls can be combined exactly: several micro-batches of one optimizer
step (gradient accumulation), or the T calls of a recurrent cell's activation in one forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

# A sigmoid or tanh unit is "saturated" when its local derivative is below this fraction of
# the derivative's maximum: the gradient through it is damped more than 20x. For the sigmoid,
# s' = s(1 - s) <= 1/4, so s(1 - s) < 0.0125, i.e. s < 0.0127 or s > 0.9873 (|x| > 4.36);
# for tanh, t' = 1 - t^2 <= 1, so |t| > 0.9747 (|x| > 2.18). (LeCun et al. 1998, "Efficient
# BackProp", on keeping units out of the flat regions of the sigmoid.)
SATURATION_DERIVATIVE_FRACTION = 0.05
SIGMOID_MAX_DERIVATIVE = 0.25
TANH_MAX_DERIVATIVE = 1.0

# Fixed histogram ranges per activation kind; values outside fall into the end bins.
HISTOGRAM_BINS = 20
HISTOGRAM_RANGES = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}
DEFAULT_HISTOGRAM_RANGE = (-4.0, 4.0)

# Sum entries of `ActivationSums.totals`.
COUNT, SUM, SUM_SQ, SATURATED, NONPOSITIVE = range(5)


@dataclass
class ActivationSums:
    """Additive statistics of one module's output over one or more forward calls.

    Attributes:
        kind: The activation kind (see `activation_sums`).
        totals: (5,) float tensor: element count, sum, sum of squares, saturated count,
            non-positive count.
        unit_sum: (F,) per-unit sums over all other dimensions (F = units: features or channels).
        unit_rows: Number of values summed per unit.
        unit_max: (F,) per-unit maximum (a ReLU-family unit whose maximum is <= 0 was off for
            every example: dead on this batch); None for other kinds.
        histogram: (HISTOGRAM_BINS,) counts, or None.
    """

    kind: str
    totals: Tensor
    unit_sum: Tensor
    unit_rows: int
    unit_max: Tensor | None
    histogram: Tensor | None = None

    def add(self, other: ActivationSums) -> None:
        """Combine with the statistics of another call (same module, same units)."""
        self.totals = self.totals + other.totals
        self.unit_sum = self.unit_sum + other.unit_sum
        self.unit_rows += other.unit_rows
        if self.unit_max is not None and other.unit_max is not None:
            self.unit_max = torch.maximum(self.unit_max, other.unit_max)
        if self.histogram is not None and other.histogram is not None:
            self.histogram = self.histogram + other.histogram


def saturated_mask(y: Tensor, kind: str) -> Tensor | None:
    """Elements of a sigmoid/tanh output in the flat region (see SATURATION_DERIVATIVE_FRACTION)."""
    if kind == "sigmoid":
        return y * (1 - y) < SATURATION_DERIVATIVE_FRACTION * SIGMOID_MAX_DERIVATIVE
    if kind == "tanh":
        return 1 - y * y < SATURATION_DERIVATIVE_FRACTION * TANH_MAX_DERIVATIVE
    return None


def activation_sums(y: Tensor, kind: str, unit_dim: int, histogram: bool) -> ActivationSums:
    """Sufficient statistics of one output tensor `y` (B, ..., F, ...) with units on `unit_dim`.

    Args:
        y: A module's output.
        kind: "sigmoid", "tanh", "relu" (ReLU family: dead units and zero fraction are
            measured), "smooth" (ELU, GELU, SiLU, ...), or "linear" (pre-activations).
        unit_dim: The dimension that indexes units (-1 for Linear layouts, 1 for conv).
        histogram: Also count values into HISTOGRAM_BINS fixed bins.
    """
    y = y.detach().float()
    if y.dim() < 2:
        y = y.reshape(-1, 1)
    unit_dim = unit_dim % y.dim()
    others = tuple(d for d in range(y.dim()) if d != unit_dim)
    zero = y.new_zeros(())
    saturated = saturated_mask(y, kind)
    relu = kind == "relu"
    totals = torch.stack(
        [
            y.new_tensor(float(y.numel())),
            y.sum(),
            torch.linalg.vector_norm(y).square(),
            saturated.sum() if saturated is not None else zero,
            (y <= 0).sum() if relu else zero,
        ]
    )
    hist = None
    if histogram:
        low, high = HISTOGRAM_RANGES.get(kind, DEFAULT_HISTOGRAM_RANGE)
        hist = torch.histc(y.clamp(low, high), bins=HISTOGRAM_BINS, min=low, max=high)
    return ActivationSums(
        kind=kind,
        totals=totals,
        unit_sum=y.sum(others),
        unit_rows=y.numel() // y.shape[unit_dim],
        unit_max=y.amax(others) if relu else None,
        histogram=hist,
    )


def activation_summary(
    sums: ActivationSums, previous_unit_mean: Tensor | None
) -> dict[str, Tensor]:
    """Per-module statistics from combined sums, as 0-d tensors on the device.

    - `act/mean` = sum / n; `act/std` = sqrt(sum_sq / n - mean^2) (population std);
    - `act/saturated`: fraction of sigmoid/tanh values in the flat region;
    - `act/dead`: fraction of ReLU-family units whose output was <= 0 for every example;
    - `act/zero_frac`: fraction of ReLU-family values <= 0;
    - `act/drift`: mean over units of |mu_u - mu_u_prev| / std, the shift of each unit's mean
      since the last logged step in units of the layer's spread (the measurable face of
      internal covariate shift, Ioffe & Szegedy 2015); absent on the first logged step.
    """
    n = sums.totals[COUNT]
    mean = sums.totals[SUM] / n
    std = (sums.totals[SUM_SQ] / n - mean.square()).clamp_min(0).sqrt()
    out = {"act/mean": mean, "act/std": std}
    if sums.kind in ("sigmoid", "tanh"):
        out["act/saturated"] = sums.totals[SATURATED] / n
    if sums.unit_max is not None:
        out["act/dead"] = (sums.unit_max <= 0).float().mean()
        out["act/zero_frac"] = sums.totals[NONPOSITIVE] / n
    if previous_unit_mean is not None:
        unit_mean = sums.unit_sum / sums.unit_rows
        out["act/drift"] = (unit_mean - previous_unit_mean).abs().mean() / std.clamp_min(1e-12)
    return out


def layer_reduce(values: Tensor, index: Tensor, layers: int, how: str) -> Tensor:
    """Combine per-parameter values into per-layer values.

    Args:
        values: (P,) one value per parameter (a norm or a max).
        index: (P,) layer index of each parameter.
        layers: Number of layers L.
        how: "norm" (sqrt of the sum of squares: the norm of the layer's concatenated
            parameters) or "max".

    Returns:
        (L,) per-layer values.
    """
    if how == "norm":
        return values.new_zeros(layers).index_add_(0, index, values.square()).sqrt()
    return values.new_zeros(layers).scatter_reduce_(0, index, values, "amax", include_self=False)
