"""Training: `fit`, optimizers and schedules by name, callbacks, layer-wise pretraining."""

from gradsight.train.callbacks import Callback, FitState
from gradsight.train.fit import FitResult, fit, penalty
from gradsight.train.optimizers import OPTIMIZERS, build_optimizer, register_optimizer
from gradsight.train.pretrain import HiddenLayer, hidden_layers, pretrain_layerwise
from gradsight.train.schedules import SCHEDULES, build_schedule, register_schedule

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "Callback",
    "FitResult",
    "FitState",
    "HiddenLayer",
    "build_optimizer",
    "build_schedule",
    "fit",
    "hidden_layers",
    "penalty",
    "pretrain_layerwise",
    "register_optimizer",
    "register_schedule",
]

# The rules gradsight.optim adds (lamb, adam_no_bias_correction, the hessian schedule)
# register themselves on import; importing it here makes every name known to fit and configs.
import gradsight.optim  # noqa: F401
