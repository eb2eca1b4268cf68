"""Normalisation layers by name, for feature vectors and for 1D/2D feature maps."""

from __future__ import annotations

from torch import nn

from gradsight.checks import check_choice, check_int
from gradsight.errors import InputError

NORMS = ("none", "batch", "layer")


def make_norm(kind: str | None, num_features: int, dims: int = 0) -> nn.Module | None:
    """A new normalisation layer, or None for no normalisation.

    - "batch": batch normalisation, x_hat = (x - mean_B) / sqrt(var_B + eps) per feature
      or channel, over the batch (and positions), then gamma x_hat + beta (Ioffe & Szegedy 2015).
    - "layer": layer normalisation over the features of each example (Ba et al. 2016); for a
      feature map, GroupNorm with one group, which normalises over all channels and positions
      of each example, is the equivalent.

    Args:
        kind: None, "none", "batch" or "layer".
        num_features: Features (for vectors) or channels (for feature maps).
        dims: Spatial dimensions of the input: 0 for (B, F), 1 for (B, C, L), 2 for (B, C, H, W).

    Returns:
        The module, or None when `kind` is None or "none".

    Raises:
        InputError: If `kind` is unknown, `num_features` < 1 or `dims` not 0, 1 or 2.
    """
    kind = "none" if kind is None else check_choice("norm", kind, NORMS)
    check_int("num_features", num_features, 1)
    if dims not in (0, 1, 2) or isinstance(dims, bool):
        raise InputError(f"dims must be 0, 1 or 2, got {dims!r}")
    if kind == "none":
        return None
    if kind == "batch":
        return nn.BatchNorm2d(num_features) if dims == 2 else nn.BatchNorm1d(num_features)
    return nn.LayerNorm(num_features) if dims == 0 else nn.GroupNorm(1, num_features)
