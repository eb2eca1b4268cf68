"""Checks of the layer names and options a builder gets, made before anything is built."""

from __future__ import annotations

from typing import Any

from gradsight.checks import check_choice, check_options
from gradsight.models.activations import activation_options
from gradsight.models.init import init_options
from gradsight.models.norm import NORMS


def check_layer_choices(
    activation: str,
    act_options: dict[str, Any],
    init: str,
    init_opts: dict[str, Any],
    norm: str | None = None,
) -> None:
    """Raises a ValueError for an unknown activation, init or norm name or option."""
    check_options("activation", activation, act_options, activation_options(activation))
    check_options("init", init, init_opts, init_options(init))
    if norm is not None:
        check_choice("norm", norm, NORMS)
