"""What the diagnosis needs to know of the optimizer: its name, family and settings."""

from __future__ import annotations

from typing import Any

# Optimizers whose step divides by a running scale of the gradient (second moments, or
# accumulated squares): the step size is about lr whatever the gradient's magnitude, so
# SGD-shaped evidence (update ratio against lr * grad) reads differently for them.
ADAPTIVE = {
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "RAdam",
    "SparseAdam",
    "Adadelta",
    "Adagrad",
    "RMSprop",
    "Adafactor",
    "Lamb",
    "LAMB",
    "Lion",
    "AdamWScheduleFree",
}
SETTINGS = ("lr", "momentum", "nesterov", "betas", "weight_decay", "eps", "rho", "alpha")


def unwrap_optimizer(optimizer: Any) -> Any:
    """The torch optimizer inside wrappers that hold it as `.optimizer` (Accelerate's
    AcceleratedOptimizer, Lightning's LightningOptimizer, ...)."""
    seen = 0
    while hasattr(optimizer, "optimizer") and not hasattr(optimizer, "register_step_pre_hook"):
        optimizer = optimizer.optimizer
        seen += 1
        if seen > 10:
            break
    return optimizer


def describe_optimizer(optimizer: Any) -> dict[str, Any]:
    """`{"name", "family", "param_groups", <settings of the first group>}` as plain JSON values.

    `family` is "adaptive" (Adam, AdamW, Adadelta, RMSprop, Adagrad, ...: see ADAPTIVE, or
    any optimizer with `betas` in its defaults), "sgd" (the rest), or "manual" without an
    optimizer (weights updated by the training loop itself).
    """
    if optimizer is None:
        return {"name": None, "family": "manual", "param_groups": 0}
    optimizer = unwrap_optimizer(optimizer)
    name = type(optimizer).__name__
    defaults = getattr(optimizer, "defaults", {}) or {}
    adaptive = name in ADAPTIVE or "betas" in defaults
    info: dict[str, Any] = {
        "name": name,
        "family": "adaptive" if adaptive else "sgd",
        "param_groups": len(getattr(optimizer, "param_groups", [])),
    }
    groups = getattr(optimizer, "param_groups", None) or [defaults]
    for key in SETTINGS:
        value = groups[0].get(key, defaults.get(key))
        if isinstance(value, (bool, int, float)):
            info[key] = value
        elif isinstance(value, (tuple, list)) and all(isinstance(v, (int, float)) for v in value):
            info[key] = [float(v) for v in value]
    return info
