"""The registry of experiments, in the order the theory builds up: the sigmoid product first.

To add an experiment: write `gradsight/lab/NAME.py` defining `EXPERIMENT = Experiment(...)`
and append its module here.
"""

from __future__ import annotations

from gradsight.lab import (
    adagrad_sparse,
    adam_bias_correction,
    batchnorm_residual,
    dead_relu,
    exploding_clipping,
    hessian_lr,
    initialization,
    lamb_large_batch,
    learning_rate,
    optimizers,
    pretraining,
    rnn_vs_lstm,
    saddle,
    sigmoid_product,
    vanishing_depth,
    zero_centered,
)
from gradsight.lab.experiment import Experiment

_MODULES = (
    sigmoid_product,
    vanishing_depth,
    initialization,
    batchnorm_residual,
    dead_relu,
    zero_centered,
    rnn_vs_lstm,
    exploding_clipping,
    optimizers,
    adagrad_sparse,
    adam_bias_correction,
    learning_rate,
    saddle,
    pretraining,
    hessian_lr,
    lamb_large_batch,
)

EXPERIMENTS: dict[str, Experiment] = {m.EXPERIMENT.name: m.EXPERIMENT for m in _MODULES}
