"""Remedies: model and training surgery that applies a `Remedy` of the diagnosis.

Every remedy is a function `remedy(model, settings, task, seed=0) -> Treatment` named after
the diagnosis's remedy (`diagnosis.finding.REMEDIES`); it works on a deep copy and raises
`NotApplicable(reason)` when it cannot apply. `apply_remedies` chains several.

```python
from gradsight.remedies import apply_remedies
treatment = apply_remedies(["relu_activation", "he_init"], model, {"optimizer": "sgd"}, task)
treatment.model, treatment.settings, treatment.changes
```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from gradsight.data.task import Task
from gradsight.diagnosis.finding import REMEDIES
from gradsight.errors import InputError
from gradsight.remedies.activations import (
    elu_activation,
    leaky_relu_activation,
    relu_activation,
    swap_modules,
)
from gradsight.remedies.architecture import layerwise_pretraining, lstm_cell, residual_connections
from gradsight.remedies.base import NotApplicable, RemedyFunction, Treatment
from gradsight.remedies.data import normalize_inputs
from gradsight.remedies.init import glorot_init, he_init
from gradsight.remedies.norm import batch_norm, layer_norm, qk_norm
from gradsight.remedies.training import (
    adaptive_optimizer,
    gradient_clipping,
    lower_learning_rate,
    lr_range_test,
    lr_warmup,
    momentum,
    raise_learning_rate,
    weight_decay,
)

REMEDY_FUNCTIONS: dict[str, RemedyFunction] = {
    "relu_activation": relu_activation,
    "leaky_relu_activation": leaky_relu_activation,
    "elu_activation": elu_activation,
    "he_init": he_init,
    "glorot_init": glorot_init,
    "batch_norm": batch_norm,
    "residual_connections": residual_connections,
    "lstm_cell": lstm_cell,
    "gradient_clipping": gradient_clipping,
    "weight_decay": weight_decay,
    "lower_learning_rate": lower_learning_rate,
    "raise_learning_rate": raise_learning_rate,
    "lr_range_test": lr_range_test,
    "momentum": momentum,
    "adaptive_optimizer": adaptive_optimizer,
    "normalize_inputs": normalize_inputs,
    "layerwise_pretraining": layerwise_pretraining,
    "lr_warmup": lr_warmup,
    "layer_norm": layer_norm,
    "qk_norm": qk_norm,
}
assert set(REMEDY_FUNCTIONS) == set(REMEDIES), "one function per remedy the diagnosis names"


def apply_remedies(
    names: Sequence[str], model: nn.Module, settings: dict[str, Any], task: Task, seed: int = 0
) -> Treatment:
    """Applies remedies in order, each to the previous one's result.

    Raises:
        InputError: If a name is not a remedy.
        NotApplicable: If one of them does not apply (its reason is prefixed by its name).
    """
    unknown = [name for name in names if name not in REMEDY_FUNCTIONS]
    if unknown or not names:
        raise InputError(
            f"unknown remedy {unknown or names!r}; choose from: {', '.join(REMEDY_FUNCTIONS)}"
        )
    current = None
    for name in names:
        base = (
            (model, settings, task)
            if current is None
            else (current.model, current.settings, current.task)
        )
        try:
            step = REMEDY_FUNCTIONS[name](*base, seed=seed)
        except NotApplicable as error:
            prefix = f"{name}: " if len(names) > 1 else ""
            raise NotApplicable(prefix + error.reason) from None
        if current is not None:
            step = Treatment(
                current.names + step.names,
                step.model,
                step.settings,
                step.task,
                current.changes + step.changes,
            )
        current = step
    assert current is not None
    return current


__all__ = [
    "REMEDY_FUNCTIONS",
    "NotApplicable",
    "RemedyFunction",
    "Treatment",
    "adaptive_optimizer",
    "apply_remedies",
    "batch_norm",
    "elu_activation",
    "glorot_init",
    "gradient_clipping",
    "he_init",
    "layer_norm",
    "layerwise_pretraining",
    "leaky_relu_activation",
    "lower_learning_rate",
    "lr_range_test",
    "lr_warmup",
    "lstm_cell",
    "momentum",
    "normalize_inputs",
    "qk_norm",
    "raise_learning_rate",
    "relu_activation",
    "residual_connections",
    "swap_modules",
    "weight_decay",
]
