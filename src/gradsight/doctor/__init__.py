"""The doctor: baseline probe -> diagnose -> remedy trials -> `Prescription`.

```python
import gradsight as gs
task = gs.data.load("digits", seed=0)
build = lambda seed: gs.models.mlp(64, 10, depth=10, activation="sigmoid", seed=seed)
prescription = gs.doctor.doctor(build, task, optimizer="sgd", lr=0.1, steps=300, seeds=3)
print(prescription.summary())
```

Runs go to a `gradsight.executor.Executor` (`executor=Executor(workers=2)` trains two at
once); a DataLoader or (inputs, targets) tensors with `loss=` stand in for a Task.

`page.write(prescription, "runs/doctor")` writes doctor.html and prescription.json;
`gs.report(history, findings, path, sections=[page.section(prescription)])` adds the
doctor's results to a run's report.
"""

from gradsight.doctor import page
from gradsight.doctor.choose import candidates
from gradsight.doctor.core import doctor
from gradsight.doctor.inputs import as_task
from gradsight.doctor.prescription import Prescription
from gradsight.doctor.trial import Curvature, flow_ratio

__all__ = ["Curvature", "Prescription", "as_task", "candidates", "doctor", "flow_ratio", "page"]
