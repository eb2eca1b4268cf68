"""Built-in tasks: small, deterministic, generated locally (nothing downloads).

>>> import gradsight as gs
>>> task = gs.data.load("digits", seed=0)
>>> gs.data.names()
['adding', 'copy', 'digits', 'mnist1d', 'sparse_features', 'spirals', 'teacher']
"""

from gradsight.data.registry import TASKS, load, names
from gradsight.data.task import IGNORE_INDEX, Task

__all__ = ["IGNORE_INDEX", "TASKS", "Task", "load", "names"]
