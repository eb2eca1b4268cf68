"""The lab: every claim of the theory as a measured experiment with figures.

```python
from gradsight import lab

lab.list_experiments()                        # [(name, question), ...]
result = lab.run_experiment("vanishing-depth", lab.LabConfig(quick=True, out_dir="lab"))
[(c.statement, c.held) for c in result.claims]  # page at lab/vanishing-depth/index.html
lab.run_all(lab.LabConfig(quick=True))        # every experiment, and lab/index.html
```

One module per experiment (`sigmoid_product.py`, ...) defines `EXPERIMENT`, registered in
`registry.py`; `runner.py` writes the pages; `stats.py` summarises measurements over seeds.
"""

from gradsight.lab.experiment import Claim, Experiment, ExperimentResult, LabConfig
from gradsight.lab.registry import EXPERIMENTS
from gradsight.lab.runner import get_experiment, run_all, run_experiment, write_index
from gradsight.lab.stats import Spread, bootstrap_ci, mean_spread


def list_experiments() -> list[tuple[str, str]]:
    """(name, question) of every registered experiment, in the book's order."""
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
