"""The registry of experiments, in the order of the book (issue 7's numbering).

To add an experiment: write `gradsight/lab/NAME.py` defining `EXPERIMENT = Experiment(...)`
and append its module here.
"""

from __future__ import annotations

from gradsight.lab import batchnorm_residual, initialization, sigmoid_product, vanishing_depth
from gradsight.lab.experiment import Experiment

_MODULES = (sigmoid_product, vanishing_depth, initialization, batchnorm_residual)

EXPERIMENTS: dict[str, Experiment] = {m.EXPERIMENT.name: m.EXPERIMENT for m in _MODULES}
