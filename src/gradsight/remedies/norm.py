"""Insert batch norm after the Linear/Conv layers inside `nn.Sequential` containers (Ioffe &
Szegedy 2015). Layers outside a Sequential are left alone: their forward is arbitrary code."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from torch import nn

from gradsight.data.task import Task
from gradsight.remedies.base import NotApplicable, Treatment, copy_model, treated

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d)


def _norm_for(layer: nn.Module) -> nn.Module | None:
    """BatchNorm1d for Linear/Conv1d outputs, BatchNorm2d for Conv2d, on the layer's device."""
    if isinstance(layer, nn.Linear):
        norm = nn.BatchNorm1d(layer.out_features)
    elif isinstance(layer, nn.Conv1d):
        norm = nn.BatchNorm1d(layer.out_channels)
    elif isinstance(layer, nn.Conv2d):
        norm = nn.BatchNorm2d(layer.out_channels)
    else:
        return None
    return norm.to(device=layer.weight.device, dtype=layer.weight.dtype)


def _with_norms(seq: nn.Sequential) -> tuple[nn.Sequential, int]:
    """A Sequential with a norm after each Linear/Conv that is followed by something other than
    a norm; the container's last layer (an output head when the container is the model) is
    left alone. Returns the new container and the number of norms inserted."""
    items = list(seq.named_children())
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    inserted = 0
    for i, (name, module) in enumerate(items):
        layers[name] = module
        following = items[i + 1][1] if i + 1 < len(items) else None
        if following is None or isinstance(following, _NORMS):
            continue
        norm = _norm_for(module)
        if norm is not None:
            layers[f"{name}_bn"] = norm
            inserted += 1
    return nn.Sequential(layers), inserted


def batch_norm(model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0) -> Treatment:
    """BatchNorm1d/2d after every hidden Linear/Conv of every nn.Sequential in the model."""
    changed = copy_model(model)
    total = 0
    if isinstance(changed, nn.Sequential):
        changed, total = _with_norms(changed)
    containers = [
        name for name, m in changed.named_modules() if name and isinstance(m, nn.Sequential)
    ]
    for name in containers:  # parents come before their children in named_modules
        parent_name, _, child = name.rpartition(".")
        parent = changed.get_submodule(parent_name) if parent_name else changed
        new, count = _with_norms(getattr(parent, child))
        setattr(parent, child, new)
        total += count
    if total == 0:
        raise NotApplicable(
            "no Linear/Conv layer followed by another layer inside an nn.Sequential; "
            "insert nn.BatchNorm1d/2d after the hidden layers in the model's code"
        )
    change = (
        f"insert nn.BatchNorm1d/2d after each hidden Linear/Conv ({total} layers); "
        'with gradsight\'s builders: gs.models.mlp(..., norm="batch")'
    )
    return treated("batch_norm", changed, settings, task, change)
