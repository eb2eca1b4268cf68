"""Which modules of a model gradsight watches, and under which names."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gradsight.models import HiddenStateTap

# Activation modules by kind: what their outputs can tell (see telemetry.stats).
ACTIVATION_KINDS: dict[type[nn.Module], str] = {
    nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh",
    nn.ReLU: "relu",
    nn.ReLU6: "relu",
    nn.LeakyReLU: "relu",
    nn.PReLU: "relu",
    nn.RReLU: "relu",
    nn.ELU: "smooth",
    nn.SELU: "smooth",
    nn.CELU: "smooth",
    nn.GELU: "smooth",
    nn.SiLU: "smooth",
    nn.Mish: "smooth",
    nn.Softplus: "smooth",
}
# Layers whose outputs are pre-activations, with the dimension that indexes their units.
PREACTIVATION_UNIT_DIMS: dict[type[nn.Module], int] = {
    nn.Linear: -1,
    nn.Conv1d: 1,
    nn.Conv2d: 1,
    nn.Conv3d: 1,
}


@dataclass(frozen=True)
class WatchedModule:
    """A module whose output is measured.

    Attributes:
        name: Qualified name from `named_modules()`.
        module: The module.
        kind: "sigmoid", "tanh", "relu", "smooth" (activations) or "linear" (pre-activations).
        unit_dim: For pre-activations, the dimension of units; None for activations, which
            take it from the last pre-activation layer before them in the forward pass.
    """

    name: str
    module: nn.Module
    kind: str
    unit_dim: int | None


@dataclass(frozen=True)
class ParameterLayout:
    """The model's trainable parameters grouped by the layer (module) that owns them.

    Attributes:
        names: Qualified parameter names, in registration order.
        params: The parameters, same order (shared parameters once).
        layers: Layer names; a parameter of the root module is its own layer.
        layer_of: The layer of each parameter, as indices into `layers`.
        layer_index: `layer_of` as a (P,) long tensor on the parameters' device.
    """

    names: list[str]
    params: list[nn.Parameter]
    layers: list[str]
    layer_of: list[int]
    layer_index: torch.Tensor


def unwrap(model: nn.Module) -> nn.Module:
    """The module that holds the layers: DDP's `.module`, torch.compile's original module."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def parameter_layout(model: nn.Module) -> ParameterLayout:
    """Group the trainable parameters of `model` by owning module."""
    seen: set[int] = set()
    names, params, owners = [], [], []
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            qualified = f"{module_name}.{param_name}" if module_name else param_name
            names.append(qualified)
            params.append(param)
            owners.append(module_name or qualified)
    layers = list(dict.fromkeys(owners))
    device = params[0].device if params else torch.device("cpu")
    layer_of = [layers.index(o) for o in owners]
    index = torch.tensor(layer_of, dtype=torch.long, device=device)
    return ParameterLayout(names, params, layers, layer_of, index)


def watched_modules(model: nn.Module) -> list[WatchedModule]:
    """Activation modules and pre-activation layers (Linear, Conv), in registration order."""
    watched = []
    for name, module in model.named_modules():
        if type(module) in ACTIVATION_KINDS:
            watched.append(WatchedModule(name, module, ACTIVATION_KINDS[type(module)], None))
        elif type(module) in PREACTIVATION_UNIT_DIMS:
            watched.append(
                WatchedModule(name, module, "linear", PREACTIVATION_UNIT_DIMS[type(module)])
            )
    return watched


def hidden_taps(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """gradsight RNNs' `HiddenStateTap` modules (called once per time step)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, HiddenStateTap)]
