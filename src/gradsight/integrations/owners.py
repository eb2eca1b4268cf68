"""Which module owns an optimizer's parameters, found from torch's global module hooks."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn


@dataclass
class TopModules:
    """Top-level modules called with autograd on, by id, as weak references: `enter` is a
    global forward pre-hook, `leave` an always-called global forward hook (the nesting depth
    stays right when a forward raises)."""

    depth: int = 0
    modules: dict[int, weakref.ref] = field(default_factory=dict)

    def enter(self, module: nn.Module, args: Any) -> None:
        if self.depth == 0 and torch.is_grad_enabled():
            ref = self.modules.get(id(module))
            if ref is None or ref() is not module:  # new, or a dead module's id reused
                self.modules[id(module)] = weakref.ref(module)
        self.depth += 1

    def leave(self, module: nn.Module, args: Any, output: Any) -> None:
        self.depth = max(self.depth - 1, 0)

    def alive(self) -> list[nn.Module]:
        """The modules still alive, in the order of their first call."""
        found = [ref() for ref in self.modules.values()]
        return [m for m in found if m is not None]


def parameters_of(optimizer: Any) -> list[Tensor]:
    """The optimizer's parameters, each once, in its groups' order."""
    seen: dict[int, Tensor] = {}
    for group in optimizer.param_groups:
        for param in group["params"]:
            seen.setdefault(id(param), param)
    return list(seen.values())


def owning_model(params: list[Tensor], candidates: list[nn.Module]) -> nn.Module | None:
    """The module among `candidates` whose parameters contain all of `params` (the one with
    the most parameters when several do), or None."""
    wanted = {id(p) for p in params}
    owners = []
    for module in candidates:
        own = {id(p) for p in module.parameters()}
        if wanted <= own:
            owners.append((len(own), module))
    return max(owners, key=lambda pair: pair[0])[1] if owners else None


def parameter_holder(params: list[Tensor], candidates: list[nn.Module]) -> nn.Module:
    """A module that holds exactly `params`, each under the qualified name it has in the
    candidate that owns it (prefixed with the candidate's class when several own some), or
    `param<i>` when none does; its layers are named as in the real model."""
    names: dict[int, tuple[nn.Module, str]] = {}
    for module in candidates:
        for name, param in module.named_parameters():
            names.setdefault(id(param), (module, name))
    owners = list(dict.fromkeys(id(names[id(p)][0]) for p in params if id(p) in names))
    holder = nn.Module()
    for index, param in enumerate(params):
        if id(param) not in names:
            holder.register_parameter(f"param{index}", param)
            continue
        owner, name = names[id(param)]
        if len(owners) > 1:
            name = f"{type(owner).__name__}{owners.index(id(owner))}.{name}"
        *path, leaf = name.split(".")
        node = holder
        for part in path:
            if part not in node._modules:
                node.add_module(part, nn.Module())
            node = node._modules[part]
        node.register_parameter(leaf, param)
    return holder
