"""The lab: every claim of the theory as a measured experiment with figures.

```python
from gradsight import lab

lab.list_experiments()                        # [(name, question), ...]
result = lab.run_experiment("vanishing-depth", lab.LabConfig(quick=True, out_dir="lab"))
[(c.statement, c.held) for c in result.claims]  # page at lab/vanishing-depth/index.html
lab.run_all(lab.LabConfig(quick=True))        # every experiment, and lab/index.html
```

One module per experiment (`sigmoid_product.py`, ...) defines `EXPERIMENT`, registered in
`registry.py`; `runner.py` writes the pages; `gradsight.stats` summarises measurements over
seeds (shared with the doctor).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gradsight.lab.experiment import Claim, Experiment, ExperimentResult, LabConfig
    from gradsight.lab.registry import EXPERIMENTS
    from gradsight.lab.runner import get_experiment, run_all, run_experiment, write_index
    from gradsight.stats import Spread, bootstrap_ci, mean_spread

# Public name -> its module, imported on first access (PEP 562): the experiments bring
# pandas and matplotlib, which `gradsight lab --help` and the doctor's statistics need not load.
_NAMES = {
    "Claim": "gradsight.lab.experiment",
    "Experiment": "gradsight.lab.experiment",
    "ExperimentResult": "gradsight.lab.experiment",
    "LabConfig": "gradsight.lab.experiment",
    "EXPERIMENTS": "gradsight.lab.registry",
    "get_experiment": "gradsight.lab.runner",
    "run_all": "gradsight.lab.runner",
    "run_experiment": "gradsight.lab.runner",
    "write_index": "gradsight.lab.runner",
    "Spread": "gradsight.stats",
    "bootstrap_ci": "gradsight.stats",
    "mean_spread": "gradsight.stats",
}


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_NAMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def list_experiments() -> list[tuple[str, str]]:
    """(name, question) of every registered experiment, in the book's order."""
    from gradsight.lab.registry import EXPERIMENTS

    return [(e.name, e.question) for e in EXPERIMENTS.values()]


__all__ = [
    "EXPERIMENTS",
    "Claim",
    "Experiment",
    "ExperimentResult",
    "LabConfig",
    "Spread",
    "bootstrap_ci",
    "get_experiment",
    "list_experiments",
    "mean_spread",
    "run_all",
    "run_experiment",
    "write_index",
]
