"""Normalisation remedies: batch norm, layer norm, and query-key norm.

`batch_norm` inserts BatchNorm after the hidden Linear/Conv layers (Ioffe & Szegedy 2015).
Inside `nn.Sequential` containers the norm becomes one more child. A model with no such
container is traced with torch.fx (`symbolic_trace`) and gets a BatchNorm call after each
hidden Linear/Conv call of its graph; a forward that cannot be traced (control flow that
depends on the data) is not applicable.

`layer_norm` (Ba et al. 2016) fills the model's disabled norm slots (an `nn.Identity` where a
norm belongs: GPT-2's `ln_1`, `ln_2`, `ln_f`, a block's `norm1`, ...) with LayerNorm, as
Pre-LN transformers place it (Xiong et al. 2020), or else puts LayerNorm after the hidden
layers of its `nn.Sequential` containers. `qk_norm` fills the `q_norm`/`k_norm` slots of
attention modules (timm's `Attention(qk_norm=False)` leaves them as `nn.Identity`) with a
LayerNorm over the head dimension, which bounds the attention logits q.k / sqrt(d)
(Dehghani et al. 2023; Wortsman et al. 2023). The width of each LayerNorm is read from the
slot's input in one forward pass on two training examples.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
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


# Last name parts of modules that hold a layer's norm: ln_1, ln_f, ln2, norm, norm1, layer_norm,
# attention_norm, post_attention_layernorm, ... (the query/key slots are `QK_SLOT`'s).
NORM_SLOT = re.compile(r"^(ln(_?\w+)?|(\w+_)?(layer_?)?norm(_?\d+|_\w+)?|\w+_layernorm)$")
# Last name parts of the query and key norm slots of an attention module.
QK_SLOT = re.compile(r"^(q|k|query|key)_(norm|ln|layernorm|layer_norm)$")
NormFactory = Callable[[nn.Module], nn.Module | None]


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


def _layer_norm_for(layer: nn.Module) -> nn.Module | None:
    """LayerNorm over a Linear's features; GroupNorm with one group (LayerNorm over channels
    and positions) for Conv outputs; on the layer's device."""
    if isinstance(layer, nn.Linear):
        norm = nn.LayerNorm(layer.out_features)
    elif isinstance(layer, (nn.Conv1d, nn.Conv2d)):
        norm = nn.GroupNorm(1, layer.out_channels)
    else:
        return None
    return norm.to(device=layer.weight.device, dtype=layer.weight.dtype)


def _with_norms(seq: nn.Sequential, norm_for: NormFactory = _norm_for) -> tuple[nn.Sequential, int]:
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
        norm = norm_for(module)
        if norm is not None:
            suffix = "bn" if norm_for is _norm_for else "ln"
            layers[f"{name}_{suffix}"] = norm
            inserted += 1
    return nn.Sequential(layers), inserted


def _in_sequentials(model: nn.Module, norm_for: NormFactory = _norm_for) -> tuple[nn.Module, int]:
    """`model` (a copy) with norms inserted in every nn.Sequential; the count inserted."""
    total = 0
    if isinstance(model, nn.Sequential):
        model, total = _with_norms(model, norm_for)
    containers = [
        name for name, m in model.named_modules() if name and isinstance(m, nn.Sequential)
    ]
    for name in containers:  # parents come before their children in named_modules
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        new, count = _with_norms(getattr(parent, child), norm_for)
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


def _slots(model: nn.Module, pattern: re.Pattern) -> list[str]:
    """Qualified names of the `nn.Identity` modules whose last name part matches `pattern`."""
    return [
        name
        for name, module in model.named_modules()
        if name and type(module) is nn.Identity and pattern.match(name.rpartition(".")[2])
    ]


def _fill_slots(model: nn.Module, slots: list[str], task: Task) -> list[str]:
    """Replace each slot of `model` (changed in place) by a LayerNorm over its input's last
    dimension, read in one eval-mode forward pass on two training examples.

    Returns:
        The slots filled (those the forward pass reached).

    Raises:
        NotApplicable: If the model does not run on the task's inputs.
    """
    widths: dict[str, int] = {}

    def record(name: str, module: nn.Module, args: tuple, out: Any) -> None:
        if args and isinstance(args[0], torch.Tensor) and args[0].dim() >= 1:
            widths.setdefault(name, int(args[0].shape[-1]))

    handles = [
        model.get_submodule(name).register_forward_hook(
            lambda m, a, o, name=name: record(name, m, a, o)
        )
        for name in slots
    ]
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(task.x_train[:_PROBE_EXAMPLES].to(device))
    except Exception as error:  # a user model fails on foreign inputs in many ways
        raise NotApplicable(f"the model does not run on the task's inputs: {error}") from None
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    filled = []
    for name in slots:
        if name not in widths:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        norm = nn.LayerNorm(widths[name])
        if parameter is not None:
            norm = norm.to(device=parameter.device, dtype=parameter.dtype)
        setattr(parent, child, norm)
        filled.append(name)
    return filled


def layer_norm(model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0) -> Treatment:
    """LayerNorm in the model's disabled norm slots (`nn.Identity` modules named like norms:
    ln_1, ln_f, norm1, ...), or else after every hidden Linear (GroupNorm(1, C) after a Conv)
    of its `nn.Sequential` containers.

    Normalising what enters each block keeps the residual stream's growth from compounding
    through depth (Ba et al. 2016; Xiong et al. 2020).
    """
    changed = copy_model(model)
    slots = [n for n in _slots(changed, NORM_SLOT) if not QK_SLOT.match(n.rpartition(".")[2])]
    filled = _fill_slots(changed, slots, task) if slots else []
    if filled:
        shown = ", ".join(filled[:4]) + (", ..." if len(filled) > 4 else "")
        change = (
            f"nn.LayerNorm in the {len(filled)} norm slots that were nn.Identity ({shown}): "
            "normalise each block's input before attention and MLP (Pre-LN)"
        )
        return treated("layer_norm", changed, settings, task, change)
    changed, total = _in_sequentials(copy_model(model), _layer_norm_for)
    if total:
        change = (
            f"insert nn.LayerNorm after each hidden Linear (GroupNorm(1, C) after a Conv) "
            f"({total} layers)"
        )
        return treated("layer_norm", changed, settings, task, change)
    present = sum(isinstance(m, nn.LayerNorm) for m in model.modules())
    already = f"it has {present} LayerNorm modules and " if present else ""
    raise NotApplicable(
        f"no place to put LayerNorm: {already}no nn.Identity norm slot (ln_1, norm1, ...) and "
        "no hidden Linear/Conv inside an nn.Sequential; add nn.LayerNorm before each block's "
        "attention and MLP in the model's code (Pre-LN, Xiong et al. 2020)"
    )


def qk_norm(model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0) -> Treatment:
    """LayerNorm over the head dimension in the attention modules' `q_norm`/`k_norm` slots
    that are `nn.Identity` (timm's `Attention(qk_norm=False)`, ...): queries and keys of
    bounded size keep the logits q.k / sqrt(d) from growing until attention is one-hot
    (Dehghani et al. 2023; Wortsman et al. 2023).

    Attention that computes q.k^T inline has no slot: not applicable (the change is to the
    attention's code).
    """
    changed = copy_model(model)
    slots = _slots(changed, QK_SLOT)
    filled = _fill_slots(changed, slots, task) if slots else []
    if not filled:
        attention = [
            name
            for name, module in model.named_modules()
            if isinstance(module, nn.MultiheadAttention) or "Attention" in type(module).__name__
        ]
        found = f"{len(attention)} attention modules, but " if attention else ""
        raise NotApplicable(
            f"{found}no q_norm/k_norm slot (an nn.Identity applied to the queries and keys) to "
            "fill; in the attention's code, apply nn.LayerNorm(head_dim) to q and k before "
            "q @ k.transpose(-2, -1) (Dehghani et al. 2023)"
        )
    change = (
        f"nn.LayerNorm(head_dim) on queries and keys in {len(filled)} slots "
        f"({', '.join(filled[:4])}{', ...' if len(filled) > 4 else ''}), e.g. "
        "timm's Attention(..., qk_norm=True)"
    )
    return treated("qk_norm", changed, settings, task, change)
