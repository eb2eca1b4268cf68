"""The doctor: baseline probe -> diagnose -> remedy trials -> `Prescription`.

```python
import gradsight as gs
task = gs.data.load("digits", seed=0)
build = lambda seed: gs.models.mlp(64, 10, depth=10, activation="sigmoid", seed=seed)
prescription = gs.doctor.doctor(build, task, optimizer="sgd", lr=0.1, steps=300, seeds=3)
print(prescription.summary())
```
"""

from gradsight.doctor.core import Prescription, candidates, doctor, flow_ratio

__all__ = ["Prescription", "candidates", "doctor", "flow_ratio"]
