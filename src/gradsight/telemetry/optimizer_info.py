"""What the diagnosis needs to know of the optimizer: its name, family and settings."""

from __future__ import annotations

from collections.abc import Callable
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
    # A wrapper may subclass torch.optim.Optimizer without being one inside (Accelerate's does
    # not run Optimizer.__init__, so it has register_step_pre_hook but no hooks of its own).
    for _ in range(10):
        inner = getattr(optimizer, "optimizer", None)
        if inner is None or not hasattr(inner, "param_groups"):
            break
        optimizer = inner
    return optimizer


def accumulation_hooks(
    optimizer: Any,
) -> tuple[Callable[[], bool] | None, Callable[[], float | None] | None]:
    """`(is_final, loss_scale)` of an Accelerate-wrapped optimizer, `(None, None)` otherwise.

    `is_final()` says whether the backward pass running now ends a gradient-accumulation
    cycle (Accelerate's `GradientState.sync_gradients`, which the HF Trainer and
    `accelerator.accumulate` set before each micro-batch); `loss_scale()` is the fp16
    GradScaler's scale the gradients carry until `accelerator.clip_grad_norm_` unscales them.
    """
    state = getattr(optimizer, "gradient_state", None)
    is_final = (lambda: bool(state.sync_gradients)) if state is not None else None
    scaler = getattr(optimizer, "scaler", None)
    loss_scale = None
    if scaler is not None:

        def loss_scale() -> float | None:
            return scaler.get_scale() if scaler.is_enabled() else None

    return is_final, loss_scale


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
