"""Training: `fit`, optimizers and schedules by name, callbacks."""

from gradsight.train.callbacks import Callback, FitState
from gradsight.train.fit import FitResult, fit, penalty
from gradsight.train.optimizers import OPTIMIZERS, build_optimizer, register_optimizer
from gradsight.train.schedules import SCHEDULES, build_schedule, register_schedule

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "Callback",
    "FitResult",
    "FitState",
    "build_optimizer",
    "build_schedule",
    "fit",
    "penalty",
    "register_optimizer",
    "register_schedule",
]
