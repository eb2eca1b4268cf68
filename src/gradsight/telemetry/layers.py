"""Which modules of a model gradsight watches, by role rather than by exact type.

Roles, with the dimension that indexes units where the output is measured:
- activations: torch's activation modules (subclasses too) and any leaf module whose
  class name says it is one (Hugging Face's `NewGELUActivation`, a user's
  `Swish`): kind "sigmoid", "centered_sigmoid" (sigmoid - 1/2), "tanh", "relu" (the ReLU
  family) or "smooth";
- pre-activations ("linear"): nn.Linear, nn.Bilinear, every convolution, Hugging Face's
  `Conv1D` (weight stored transposed, units still on the last dim), nn.Embedding, and the
  normalisation layers (LayerNorm, RMSNorm, GroupNorm, batch and instance norms);
- recurrent: torch's nn.RNN / nn.LSTM / nn.GRU (see `telemetry.temporal`);
- attention: nn.MultiheadAttention and modules whose class name ends in "Attention"
  (see `telemetry.transformer`).
Any other module with parameters still gets its gradient, weight and update statistics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import nn

from gradsight.models import HiddenStateTap
from gradsight.models.activations import CenteredSigmoid

# Activation modules by kind: what their outputs can tell (see telemetry.stats).
ACTIVATION_KINDS: dict[type[nn.Module], str] = {
    CenteredSigmoid: "centered_sigmoid",
    nn.Sigmoid: "sigmoid",
    nn.Hardsigmoid: "sigmoid",
    nn.Tanh: "tanh",
    nn.ReLU6: "relu",  # before Hardtanh, which it subclasses
    nn.Hardtanh: "smooth",
    nn.ReLU: "relu",
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
    nn.Hardswish: "smooth",
}
# A leaf module of another class is an activation when its class name holds
# one of these words (checked in this order: "relu" before "elu", "gelu" before "tanh").
_NAMED_KINDS = (
    ("relu", "relu"),
    ("gelu", "smooth"),
    ("silu", "smooth"),
    ("swish", "smooth"),
    ("mish", "smooth"),
    ("elu", "smooth"),
    ("softplus", "smooth"),
    ("sigmoid", "sigmoid"),
    ("tanh", "tanh"),
    ("activation", "smooth"),
)
# Normalisation layers: features on the last dim, or channels on dim 1.
_TOKEN_NORMS = (nn.LayerNorm, *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()))
_CHANNEL_NORMS = (
    nn.GroupNorm,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
)
_ATTENTION_NAME = re.compile(r"Attention$|SelfAttention\w*$")


@dataclass(frozen=True)
class WatchedModule:
    """A module whose output is measured.

    Attributes:
        name: Qualified name from `named_modules()`.
        module: The module.
        kind: "sigmoid", "centered_sigmoid", "tanh", "relu", "smooth" (activations) or
            "linear" (pre-activations).
        unit_dim: For pre-activations, the dimension of units; None for activations, which
            take it from the last pre-activation layer before them in the forward pass.
        role: What the module is: "activation", "linear", "conv", "embedding" or "norm".
    """

    name: str
    module: nn.Module
    kind: str
    unit_dim: int | None
    role: str = "activation"


@dataclass(frozen=True)
class ParameterLayout:
    """The model's trainable parameters grouped by the layer (module) that owns them.

    A parameter shared by several modules (tied embedding and output weights) is counted
    once, owned by the first module that registers it; `tied` names the others.

    Attributes:
        names: Qualified parameter names, in registration order.
        params: The parameters, same order (shared parameters once).
        layers: Layer names; a parameter of the root module is its own layer.
        layer_of: The layer of each parameter, as indices into `layers`.
        layer_index: `layer_of` as a (P,) long tensor on the parameters' device.
        tied: For each shared parameter's name, the other qualified names it goes by.
        frozen: Names of the parameters that do not require gradients (not measured).
        sparse: Some module may produce sparse gradients (nn.Embedding(sparse=True)).
    """

    names: list[str]
    params: list[nn.Parameter]
    layers: list[str]
    layer_of: list[int]
    layer_index: torch.Tensor
    tied: dict[str, list[str]] = field(default_factory=dict)
    frozen: list[str] = field(default_factory=list)
    sparse: bool = False

    def describe(self, model: nn.Module | None = None) -> dict[str, dict]:
        """`{layer: {"type", "params", "shapes", "tied"}}` as JSON values (History.meta);
        "type" is the owning module's class name when `model` is given."""
        modules = dict(model.named_modules()) if model is not None else {}
        out: dict[str, dict] = {
            layer: {"type": type(modules[layer]).__name__ if layer in modules else None}
            | {"params": [], "shapes": [], "tied": []}
            for layer in self.layers
        }
        for name, param, index in zip(self.names, self.params, self.layer_of, strict=True):
            entry = out[self.layers[index]]
            entry["params"].append(name)
            entry["shapes"].append(list(param.shape))
            for alias in self.tied.get(name, []):
                owner = alias.rpartition(".")[0]
                if owner not in entry["tied"]:
                    entry["tied"].append(owner)
        return out


def unwrap(model: nn.Module) -> nn.Module:
    """The module that holds the layers: DDP's `.module`, torch.compile's original module."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def is_compiled(model: nn.Module) -> bool:
    """Whether the model runs under torch.compile: wrapped by `torch.compile(model)`, or
    compiled in place by `model.compile()`."""
    return hasattr(model, "_orig_mod") or bool(getattr(model, "_compiled_call_impl", None))


def parameter_layout(model: nn.Module) -> ParameterLayout:
    """Group the trainable parameters of `model` by owning module."""
    seen: dict[int, str] = {}
    names, params, owners, frozen = [], [], [], []
    tied: dict[str, list[str]] = {}
    for module_name, module in model.named_modules(remove_duplicate=False):
        for param_name, param in module.named_parameters(recurse=False):
            qualified = f"{module_name}.{param_name}" if module_name else param_name
            if id(param) in seen:
                if seen[id(param)] != qualified:
                    tied.setdefault(seen[id(param)], []).append(qualified)
                continue
            seen[id(param)] = qualified
            if not param.requires_grad:
                frozen.append(qualified)
                continue
            names.append(qualified)
            params.append(param)
            owners.append(module_name or qualified)
    for first in list(tied):  # a module reached twice is no tie: keep real aliases only
        tied[first] = list(dict.fromkeys(a for a in tied[first] if a != first))
        if not tied[first]:
            del tied[first]
    layers = list(dict.fromkeys(owners))
    device = params[0].device if params else torch.device("cpu")
    layer_of = [layers.index(o) for o in owners]
    index = torch.tensor(layer_of, dtype=torch.long, device=device)
    sparse = any(getattr(m, "sparse", False) is True for m in model.modules())
    return ParameterLayout(names, params, layers, layer_of, index, tied, frozen, sparse)


def activation_kind(module: nn.Module) -> str | None:
    """The activation kind of a module, or None when it is not an activation."""
    for cls, kind in ACTIVATION_KINDS.items():
        if isinstance(module, cls):
            return kind
    if any(True for _ in module.children()):
        return None
    name = type(module).__name__.lower()
    return next((kind for word, kind in _NAMED_KINDS if word in name), None)


def preactivation_role(module: nn.Module) -> tuple[str, int] | None:
    """(role, unit dimension) of a layer whose output is a pre-activation, else None."""
    if isinstance(module, (nn.Linear, nn.Bilinear)):
        return "linear", -1
    if isinstance(module, nn.modules.conv._ConvNd):
        return "conv", 1
    if type(module).__name__ == "Conv1D" and getattr(module, "weight", None) is not None:
        return "linear", -1  # Hugging Face's GPT-2 layer: x @ W + b with W (in, out)
    if isinstance(module, nn.Embedding):
        return "embedding", -1
    if isinstance(module, _TOKEN_NORMS) or type(module).__name__.endswith(("LayerNorm", "RMSNorm")):
        return "norm", -1
    if isinstance(module, _CHANNEL_NORMS):
        return "norm", 1
    return None


def is_attention(module: nn.Module) -> bool:
    """nn.MultiheadAttention, or a module whose class name ends in "Attention"."""
    return isinstance(module, nn.MultiheadAttention) or bool(
        _ATTENTION_NAME.search(type(module).__name__)
    )


def watched_modules(model: nn.Module) -> list[WatchedModule]:
    """Activation modules and pre-activation layers, in registration order."""
    watched = []
    for name, module in model.named_modules():
        if module is model:
            continue
        kind = activation_kind(module)
        if kind is not None:
            watched.append(WatchedModule(name, module, kind, None))
            continue
        role = preactivation_role(module)
        if role is not None:
            watched.append(WatchedModule(name, module, "linear", role[1], role[0]))
    return watched


def hidden_taps(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """gradsight RNNs' `HiddenStateTap` modules (called once per time step)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, HiddenStateTap)]


def recurrent_modules(model: nn.Module) -> list[tuple[str, nn.RNNBase]]:
    """torch's nn.RNN, nn.LSTM and nn.GRU modules (and subclasses)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.RNNBase)]


def attention_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Attention modules (see `is_attention`)."""
    return [(n, m) for n, m in model.named_modules() if m is not model and is_attention(m)]


def residual_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The repeated blocks of a model: the elements of its nn.ModuleLists that hold
    parameters (transformer layers: GPT-2's `h.0`, BERT's `layer.0`, TransformerEncoder's
    `layers.0`). Their outputs are the residual stream when shaped like their inputs."""
    blocks = []
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList):
            for index, block in enumerate(module):
                if any(True for _ in block.parameters()) and any(True for _ in block.children()):
                    blocks.append((f"{name}.{index}" if name else str(index), block))
    return blocks
