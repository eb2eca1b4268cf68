"""What a watch measures on a model, and what it does not, with the reason.

```python
with gs.watch(model, optimizer) as watch:
    ...
print(watch.coverage())        # Coverage: 17 of 21 modules measured; not measured: ...
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from gradsight.telemetry.layers import (
    ParameterLayout,
    activation_kind,
    is_attention,
    preactivation_role,
)


@dataclass(frozen=True)
class Coverage:
    """Per module: what is measured, or why nothing is.

    Attributes:
        measured: Module (or functional activation) name -> what is measured there.
        unmeasured: Leaf module name -> why nothing is measured there.
        parameters: Names of the parameters whose gradients and updates are measured.
        frozen: Parameters not measured because they do not require gradients.
        tied: Shared parameters: the name measured -> the other names it goes by.
    """

    measured: dict[str, str] = field(default_factory=dict)
    unmeasured: dict[str, str] = field(default_factory=dict)
    parameters: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    tied: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: counts, and the reasons for what is not measured."""
        total = len(self.measured) + len(self.unmeasured)
        line = f"Coverage: {len(self.measured)} of {total} modules measured"
        line += f", {len(self.parameters)} parameters"
        if self.frozen:
            line += f" ({len(self.frozen)} frozen, not measured)"
        if self.tied:
            pairs = [f"{k} = {', '.join(v)}" for k, v in self.tied.items()]
            line += f"; tied: {'; '.join(pairs)}"
        if self.unmeasured:
            reasons: dict[str, list[str]] = {}
            for name, reason in self.unmeasured.items():
                reasons.setdefault(reason, []).append(name)
            parts = [f"{_names(names)} ({reason})" for reason, names in reasons.items()]
            line += f"; not measured: {'; '.join(parts)}"
        return line + "."

    def to_dict(self) -> dict[str, Any]:
        """JSON values (kept in `History.meta["coverage"]`)."""
        return {
            "measured": dict(self.measured),
            "unmeasured": dict(self.unmeasured),
            "parameters": list(self.parameters),
            "frozen": list(self.frozen),
            "tied": {k: list(v) for k, v in self.tied.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Coverage:
        """The inverse of `to_dict` (a run's `History.meta["coverage"]`)."""
        return cls(
            dict(data.get("measured", {})),
            dict(data.get("unmeasured", {})),
            list(data.get("parameters", [])),
            list(data.get("frozen", [])),
            {k: list(v) for k, v in data.get("tied", {}).items()},
        )

    def __str__(self) -> str:
        return self.summary()


def _names(names: list[str], shown: int = 4) -> str:
    head = ", ".join(names[:shown])
    return head + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _has_own_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False))


def coverage(
    model: nn.Module,
    layout: ParameterLayout,
    activations: bool,
    functional: dict[str, str],
    attention_seen: set[str],
    blocks: list[str],
    rnns_without_input_grad: set[str],
    compiled: bool,
) -> Coverage:
    """What is measured on `model` (see `Coverage`).

    Args:
        model: The watched model.
        layout: Its parameters by layer.
        activations: Whether activation statistics are on (`activations_every > 0`).
        functional: Functional activations seen so far, name -> kind.
        attention_seen: Attention modules whose attention was read so far.
        blocks: Repeated blocks whose residual stream is measured.
        rnns_without_input_grad: torch RNNs whose input did not require grad.
        compiled: The model was compiled (functional calls cannot be intercepted).
    """
    measured: dict[str, str] = {}
    unmeasured: dict[str, str] = {}
    owners = {layout.layers[i] for i in layout.layer_of}
    for name, module in model.named_modules():
        if module is model:
            continue
        parts = []
        kind = activation_kind(module)
        role = preactivation_role(module)
        if activations and kind is not None:
            parts.append(f"activation ({kind})")
        elif activations and role is not None:
            parts.append(f"output ({role[0]})")
        if isinstance(module, nn.RNNBase):
            if not activations:
                parts.append("parameters")
            elif name in rnns_without_input_grad:
                parts.append("output gradient per time step (input needs no grad: no input one)")
            else:
                parts.append("gradient per time step")
        if is_attention(module):
            if name in attention_seen:
                parts.append("attention entropy and logits")
            elif activations:
                parts.append("attention not read (no softmax or SDPA call seen in it)")
        if name in blocks and activations:
            parts.append("residual stream norm")
        if name in owners:
            parts.append("gradients and updates")
        if parts:
            measured[name] = ", ".join(dict.fromkeys(parts))
        elif not any(True for _ in module.children()):
            if _has_own_parameters(module) and all(
                not p.requires_grad for p in module.parameters(recurse=False)
            ):
                unmeasured[name] = "frozen"
            elif _has_own_parameters(module):
                unmeasured[name] = "its parameters are tied to another module's"
            elif not activations and (kind is not None or role is not None):
                unmeasured[name] = "activations_every=0"
            else:
                unmeasured[name] = "no parameters and not an activation"
    for name, kind in functional.items():
        measured[name] = f"functional activation ({kind})"
    if compiled and activations:
        unmeasured["(functional calls)"] = "torch.compile'd model: calls are not intercepted"
    return Coverage(measured, unmeasured, list(layout.names), list(layout.frozen), layout.tied)
