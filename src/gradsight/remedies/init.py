"""Re-initialise Linear/Conv/recurrent weights with He or Glorot scaling (`initialize`)."""

from __future__ import annotations

from typing import Any

from torch import nn

from gradsight.data.task import Task
from gradsight.models.init import initialize, seeded
from gradsight.remedies.base import NotApplicable, Treatment, copy_model, treated

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.RNNCellBase, nn.RNNBase)


def _reinit(
    name: str, scheme: str, model: nn.Module, settings: dict[str, Any], task: Task, seed: int
) -> Treatment:
    if not any(isinstance(m, _WEIGHTED) for m in model.modules()):
        raise NotApplicable("the model has no Linear, Conv1d/2d or recurrent layer to initialise")
    changed = copy_model(model)
    with seeded(seed):  # the draw depends on the seed only, not on the global RNG
        initialize(changed, scheme)
    change = (
        f'gs.models.initialize(model, "{scheme}") after building the model, or '
        f'gs.models.mlp(..., init="{scheme}")'
    )
    return treated(name, changed, settings, task, change)


def he_init(model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0) -> Treatment:
    """W ~ N(0, 2 / fan_in) for every weight layer (He et al. 2015); biases 0."""
    return _reinit("he_init", "he_normal", model, settings, task, seed)


def glorot_init(model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0) -> Treatment:
    """W ~ U(-b, b), b = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010); biases 0."""
    return _reinit("glorot_init", "xavier_uniform", model, settings, task, seed)
