"""Insert batch norm after the hidden Linear/Conv layers (Ioffe & Szegedy 2015).

Inside `nn.Sequential` containers the norm becomes one more child. A model with no such
container is traced with torch.fx (`symbolic_trace`) and gets a BatchNorm call after each
hidden Linear/Conv call of its graph; a forward that cannot be traced (control flow that
depends on the data) is not applicable.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from gradsight.data.task import Task
from gradsight.remedies.base import NotApplicable, Treatment, copy_model, treated

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d)
_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)
# The output rank each layer's norm accepts: BatchNorm1d takes (N, C) or (N, C, L) and
# normalises dim 1, so a Linear applied to (N, T, F) sequences must not get one.
_RANKS = {nn.Linear: (2,), nn.Conv1d: (3,), nn.Conv2d: (4,)}
# Examples run through a traced model to learn its layers' output shapes.
_PROBE_EXAMPLES = 2


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


def _in_sequentials(model: nn.Module) -> tuple[nn.Module, int]:
    """`model` (a copy) with norms inserted in every nn.Sequential; the count inserted."""
    total = 0
    if isinstance(model, nn.Sequential):
        model, total = _with_norms(model)
    containers = [
        name for name, m in model.named_modules() if name and isinstance(m, nn.Sequential)
    ]
    for name in containers:  # parents come before their children in named_modules
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        new, count = _with_norms(getattr(parent, child))
        setattr(parent, child, new)
        total += count
    return model, total


def _module(graph: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    return graph.get_submodule(node.target) if node.op == "call_module" else None


def _hidden_layers(graph: fx.GraphModule) -> list[fx.Node]:
    """Linear/Conv calls whose output reaches another Linear/Conv call (so not an output
    layer) and is not already normalised."""
    feeds_layer: dict[fx.Node, bool] = {}
    hidden = []
    for node in reversed(graph.graph.nodes):  # users come after their inputs
        feeds_layer[node] = any(
            isinstance(_module(graph, user), _LAYERS) or feeds_layer[user] for user in node.users
        )
        normed = any(isinstance(_module(graph, user), _NORMS) for user in node.users)
        if isinstance(_module(graph, node), _LAYERS) and feeds_layer[node] and not normed:
            hidden.append(node)
    return hidden[::-1]


def _traced(model: nn.Module, task: Task) -> tuple[fx.GraphModule, int]:
    """`model` (a copy) traced with torch.fx, a BatchNorm call after each hidden layer whose
    output shape suits it; the count inserted.

    Raises:
        NotApplicable: If the forward cannot be traced or run traced.
    """
    try:
        graph = fx.symbolic_trace(model)
    except Exception as error:  # user code fails tracing in many ways; all mean "not traceable"
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise NotApplicable(
            f"the model is not an nn.Sequential and torch.fx cannot trace its forward "
            f"(control flow that depends on the data?): {first}; insert nn.BatchNorm1d/2d "
            "after the hidden layers in the model's code"
        ) from None
    parameter = next(graph.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    probe = copy_model(graph).eval()  # running a copy leaves the model's own buffers as they were
    try:
        with torch.no_grad():
            ShapeProp(probe).propagate(task.x_train[:_PROBE_EXAMPLES].to(device))
    except Exception as error:  # a traced forward that cannot run is not ours to fix
        raise NotApplicable(
            f"the traced model does not run on the task's inputs: {error}"
        ) from None
    shapes = {node.name: node.meta.get("tensor_meta") for node in probe.graph.nodes}
    inserted = 0
    for node in _hidden_layers(graph):
        layer = _module(graph, node)
        meta = shapes.get(node.name)
        if meta is None or len(meta.shape) not in _RANKS[type(layer)]:
            continue
        target = f"{node.target.replace('.', '_')}_bn"
        while hasattr(graph, target):  # a layer called twice gets one norm per call
            target += "_"
        graph.add_submodule(target, _norm_for(layer))
        users = list(node.users)
        with graph.graph.inserting_after(node):
            norm = graph.graph.call_module(target, (node,))
        for user in users:
            user.replace_input_with(node, norm)
        inserted += 1
    graph.graph.lint()
    graph.recompile()
    return graph, inserted


def batch_norm(model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0) -> Treatment:
    """BatchNorm1d/2d after every hidden Linear/Conv: in each nn.Sequential of the model, or,
    when it has none to change, in its torch.fx graph (an `fx.GraphModule` is returned).

    The last layer before the output (a Sequential's last child, or a graph layer whose output
    reaches no other Linear/Conv) is left alone: normalising the logits would fix their scale.
    """
    changed, total = _in_sequentials(copy_model(model))
    where = "after each hidden Linear/Conv"
    if total == 0 and not isinstance(model, nn.Sequential):
        changed, total = _traced(copy_model(model), task)
        where = "after each hidden Linear/Conv call in forward"
    if total == 0:
        raise NotApplicable(
            "no hidden Linear/Conv layer (one whose output feeds another) to normalise; "
            "insert nn.BatchNorm1d/2d after the hidden layers in the model's code"
        )
    change = (
        f"insert nn.BatchNorm1d/2d {where} ({total} layers); "
        'with gradsight\'s builders: gs.models.mlp(..., norm="batch")'
    )
    return treated("batch_norm", changed, settings, task, change)
