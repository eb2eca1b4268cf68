"""Training: `fit`, optimizers and schedules by name, callbacks, layer-wise pretraining, and
the LR range test (`lr_find`)."""

from gradsight.train.callbacks import Callback, FitState
from gradsight.train.fit import FitResult, fit, penalty
from gradsight.train.lr_find import lr_find
from gradsight.train.lr_find_result import LRFindResult
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
    "LRFindResult",
    "build_optimizer",
    "build_schedule",
    "fit",
    "hidden_layers",
    "lr_find",
    "penalty",
    "pretrain_layerwise",
    "register_optimizer",
    "register_schedule",
]
