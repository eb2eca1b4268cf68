"""gradsight: find out why a neural network is not learning, name the problem, prove the fix.

```python
import gradsight as gs

task = gs.data.load("digits", seed=0)
model = gs.models.mlp(64, 10, depth=10, activation="sigmoid", init="xavier_uniform")
result = gs.fit(model, task, optimizer="sgd", lr=0.1, steps=1000, batch_size=64, watch=True)
result.history.table("grad/norm")     # per-layer gradient norms, one row per step
```

`import gradsight` is cheap: the subpackages and the public names are imported on first
access (PEP 562 module `__getattr__`), so a script or the CLI pays only for what it uses.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from gradsight._version import __version__

if TYPE_CHECKING:
    from gradsight import (
        curvature,
        data,
        diagnosis,
        lab,
        models,
        optim,
        playground,
        telemetry,
        train,
    )
    from gradsight.data import Task
    from gradsight.diagnosis import Finding, Remedy, diagnose
    from gradsight.doctor import Prescription, doctor
    from gradsight.integrations import export
    from gradsight.report import report
    from gradsight.telemetry import History, NonFinite, Watch, watch
    from gradsight.train import FitResult, fit, lr_find

_SUBPACKAGES = frozenset(
    {"curvature", "data", "diagnosis", "lab", "models", "optim", "playground", "telemetry", "train"}
)
# Not in __all__, but reachable as attributes as when every subpackage was imported eagerly.
_MODULES = _SUBPACKAGES | {"executor", "integrations", "progress", "remedies"}
# Public name -> the module that defines it.
_NAMES = {
    "Task": "gradsight.data",
    "Finding": "gradsight.diagnosis",
    "Remedy": "gradsight.diagnosis",
    "diagnose": "gradsight.diagnosis",
    "Prescription": "gradsight.doctor",
    "doctor": "gradsight.doctor",
    "export": "gradsight.integrations",
    "lr_find": "gradsight.train",
    "report": "gradsight.report",
    "History": "gradsight.telemetry",
    "NonFinite": "gradsight.telemetry",
    "Watch": "gradsight.telemetry",
    "watch": "gradsight.telemetry",
    "FitResult": "gradsight.train",
    "fit": "gradsight.train",
}
# Subpackages whose public name is the function they define: `gs.doctor` is the function
# `gradsight.doctor.doctor`, `gs.report` the function `gradsight.report.report`.
_SHADOWED = frozenset({"doctor", "report"})

__all__ = [
    "Finding",
    "FitResult",
    "History",
    "NonFinite",
    "Prescription",
    "Remedy",
    "Task",
    "Watch",
    "__version__",
    "curvature",
    "data",
    "diagnose",
    "diagnosis",
    "doctor",
    "export",
    "fit",
    "lab",
    "lr_find",
    "models",
    "optim",
    "playground",
    "report",
    "telemetry",
    "train",
    "watch",
]


def __getattr__(name: str) -> Any:
    """Import a subpackage or public name on first access and keep it in the namespace."""
    if name in _MODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The package module, keeping `gs.doctor` and `gs.report` the functions.

    Importing a submodule binds it on its parent (`import gradsight.doctor.core` sets the
    attribute `gradsight.doctor` to the subpackage); for the shadowed names the function of
    the same name in that subpackage is bound instead.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if (
            name in _SHADOWED
            and isinstance(value, types.ModuleType)
            and value.__name__ == f"{__name__}.{name}"
        ):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
