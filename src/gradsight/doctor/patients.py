"""The diagnosis scenarios as the doctor's patients: a picklable model factory, the task and
the training settings of each, ready for `doctor(**patient(name))`.

```python
from gradsight.doctor import doctor
from gradsight.doctor.patients import patient
prescription = doctor(**patient("sigmoid_deep_sgd"), seeds=3)
```
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from torch import nn

from gradsight.data.task import Task
from gradsight.doctor.scenarios import SCENARIOS
from gradsight.errors import InputError


@cache
def _task(name: str) -> Task:
    return SCENARIOS[name].task()


@dataclass(frozen=True)
class ScenarioModel:
    """A scenario's model factory that pickles by name (the scenarios' own builders are
    closures, which worker processes cannot unpickle). Its weights are the scenario's: the
    same for every seed."""

    name: str

    def __call__(self) -> nn.Module:
        return SCENARIOS[self.name].model(_task(self.name))


def patient(name: str) -> dict[str, Any]:
    """`doctor` arguments for scenario `name`: model_or_factory, task_or_loader, and the
    scenario's training settings (optimizer, lr, steps, batch_size, clip_norm)."""
    if name not in SCENARIOS:
        raise InputError(f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIOS)}")
    return {
        "model_or_factory": ScenarioModel(name),
        "task_or_loader": _task(name),
        **SCENARIOS[name].fit,
    }
