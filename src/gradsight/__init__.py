"""gradsight: find out why a neural network is not learning, name the problem, prove the fix.

```python
import gradsight as gs

task = gs.data.load("digits", seed=0)
model = gs.models.mlp(64, 10, depth=10, activation="sigmoid", init="xavier_uniform")
result = gs.fit(model, task, optimizer="sgd", lr=0.1, steps=1000, batch_size=64, watch=True)
result.history.table("grad/norm")     # per-layer gradient norms, one row per step
```
"""

from gradsight import curvature, data, diagnosis, lab, models, optim, playground, telemetry, train
from gradsight._version import __version__
from gradsight.data import Task
from gradsight.diagnosis import Finding, Remedy, diagnose
from gradsight.doctor import Prescription, doctor
from gradsight.integrations import export
from gradsight.optim import lr_find
from gradsight.report import report
from gradsight.telemetry import History, NonFinite, Watch, watch
from gradsight.train import FitResult, fit

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
