"""Functional calls inside a forward pass (`F.relu`, `torch.sigmoid`, `x.tanh()`, SDPA).

Activations written as function calls have no module to hook. On the steps that log
activations the watch enters `FunctionTap`, a `TorchFunctionMode`, for the model's forward
pass only: every torch function call goes through its `__torch_function__`, which runs the
call unchanged and hands the result of the calls a quantity registered for to that
quantity. The other steps pay nothing; a logged step pays one Python call per torch
function of the forward pass (a few microseconds each).

Calls made inside an intercepted call (the torch ops inside `F.multi_head_attention_forward`)
are not seen: the mode is suspended while a call runs, as torch does for every mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

Handler = Callable[[Callable, tuple, dict, Any], None]


def _functions(*names: str) -> list[Callable]:
    """The torch functions, Tensor methods and F functions of these names that exist."""
    found = []
    for name in names:
        for owner in (torch, torch.Tensor, F):
            function = getattr(owner, name, None)
            if function is not None:
                found.append(function)
    return found


# Activation functions by (name, kind); the kinds of telemetry.layers.ACTIVATION_KINDS.
ACTIVATION_FUNCTIONS: dict[Callable, tuple[str, str]] = {}
for _names, _kind in (
    (("relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "rrelu", "rrelu_"), "relu"),
    (("sigmoid", "sigmoid_"), "sigmoid"),
    (("tanh", "tanh_"), "tanh"),
    (("gelu", "silu", "elu", "elu_", "selu", "celu", "mish", "softplus", "hardswish"), "smooth"),
):
    for _name in _names:
        for _function in _functions(_name):
            ACTIVATION_FUNCTIONS[_function] = (_name.rstrip("_"), _kind)
ACTIVATION_FUNCTIONS[torch.special.expit] = ("sigmoid", "sigmoid")


class FunctionTap(TorchFunctionMode):
    """Runs every torch call unchanged; calls with a registered handler are reported.

    `handlers[function](function, args, kwargs, result)` runs after the call, with the mode
    suspended (the handler's own torch calls are not intercepted).
    """

    def __init__(self) -> None:
        super().__init__()
        self.handlers: dict[Callable, Handler] = {}
        self.active = False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        handler = self.handlers.get(func)
        if handler is not None:
            handler(func, args, kwargs, result)
        return result

    def enter(self) -> None:
        """Start intercepting (no-op when already active or nothing is registered)."""
        if not self.active and self.handlers:
            self.__enter__()
            self.active = True

    def exit(self) -> None:
        """Stop intercepting (no-op when not active)."""
        if self.active:
            self.active = False
            self.__exit__(None, None, None)
