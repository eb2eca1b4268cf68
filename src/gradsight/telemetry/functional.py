"""Functional calls inside a forward pass (`F.relu`, `torch.sigmoid`, `x.tanh()`, SDPA).

Activations written as function calls have no module to hook. On the steps that log
activations the watch enters `FunctionTap`, a `TorchFunctionMode`, during the model's
forward pass: every torch function call goes through its `__torch_function__`, which runs
the call unchanged and hands the result of the calls a quantity registered for to that
quantity (a few microseconds of Python per call).

To keep that cost off the rest of the forward pass, the first logged forward pass runs the
mode over the whole model and notes in which modules (the innermost running module) a call
was measured: its *sites*. Later logged passes enter the mode only while a site module
runs (the whole model when calls were made in its own `forward`, as in pytorch/examples'
MNIST network; only the attention modules of a GPT-2). Calls that appear later in modules
that made none during that first pass (a branch not taken then) are not seen.

Calls made inside an intercepted call (the torch ops inside `F.multi_head_attention_forward`)
are not seen: the mode is suspended while a call runs, as torch does for every mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as module_hooks
from torch.overrides import TorchFunctionMode

# A handler runs after the call, as handler(function, args, kwargs, result), and says
# whether it measured something (that makes the innermost running module a site).
Handler = Callable[[Callable, tuple, dict, Any], bool]


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

    Handlers run with the mode suspended (their own torch calls are not intercepted).

    Attributes:
        handlers: Function -> handler.
        sites: Names of the modules where a call was measured ("" for the model's own
            forward), with the functions measured there; None until the first logged
            forward pass has run. A site is entered while one of its functions has a handler.
    """

    def __init__(self) -> None:
        super().__init__()
        self.handlers: dict[Callable, Handler] = {}
        self.sites: dict[str, set[Callable]] | None = None
        self.active = False
        self._depth = 0
        self._stack: list[str] = []  # running modules, during the discovery pass
        self._names: dict[int, str] = {}
        self._discovery: list[Any] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        handler = self.handlers.get(func)
        if handler is not None and handler(func, args, kwargs, result) and self._discovery:
            self.sites.setdefault(self._stack[-1] if self._stack else "", set()).add(func)
        return result

    def enter(self) -> None:
        """Start intercepting (no-op when already active or nothing is registered)."""
        if not self.active and self.handlers:
            self.__enter__()
            self.active = True

    def exit(self) -> None:
        """Stop intercepting (no-op when not active)."""
        self._depth = 0
        if self.active:
            self.active = False
            self.__exit__(None, None, None)

    # ---- sites -----------------------------------------------------------------------------

    def start_forward(self, model: nn.Module) -> list[Any]:
        """Begin a logged forward pass of `model`; returns hooks to remove at its end.

        The first time, the mode runs over the whole pass and global module hooks track the
        running module; afterwards it runs while a site module runs.
        """
        if not self.handlers:
            return []
        if self.sites is None:
            self.sites = {}
            self._names = {id(m): name for name, m in model.named_modules()}
            self._discovery = [
                module_hooks.register_module_forward_pre_hook(self._push),
                module_hooks.register_module_forward_hook(self._pop, always_call=True),
            ]
            self.enter()
            return []
        sites = {name for name, functions in self.sites.items() if functions & self.handlers.keys()}
        if not sites:
            return []  # no function measured in the first pass: nothing to intercept
        if "" in sites:
            self.enter()
            return []
        handles = []
        for name, module in model.named_modules():
            if name in sites:
                handles.append(module.register_forward_pre_hook(self._enter_site))
                handles.append(module.register_forward_hook(self._exit_site, always_call=True))
        return handles

    def end_forward(self) -> None:
        """End the logged forward pass (and the discovery, after the first)."""
        for handle in self._discovery:
            handle.remove()
        self._discovery, self._stack = [], []
        self.exit()

    def _push(self, module: nn.Module, args: Any) -> None:
        name = self._names.get(id(module))
        if name:
            self._stack.append(name)

    def _pop(self, module: nn.Module, args: Any, out: Any) -> None:
        if self._names.get(id(module)) and self._stack:
            self._stack.pop()

    def _enter_site(self, module: nn.Module, args: Any) -> None:
        if self._depth == 0:
            self.enter()
        self._depth += 1

    def _exit_site(self, module: nn.Module, args: Any, out: Any) -> None:
        self._depth = max(self._depth - 1, 0)
        if self._depth == 0 and self.active:
            self.active = False
            self.__exit__(None, None, None)
