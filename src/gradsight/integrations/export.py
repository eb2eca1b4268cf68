"""`gs.export`: a run's metrics in other tools' formats.

```python
gs.export.tensorboard(history_or_run_dir, "tb/run")
```
"""

from gradsight.integrations.tensorboard import tensorboard

__all__ = ["tensorboard"]
