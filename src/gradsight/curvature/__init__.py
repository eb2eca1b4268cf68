"""Curvature of the loss: Hessian-vector products, extreme eigenvalues, trace, density, slices.

```python
import gradsight as gs

top = gs.curvature.eigenvalues(model, loss_fn, (x, y), k=1, which="LA").values[0]
low = gs.curvature.eigenvalues(model, loss_fn, (x, y), which="SA").values[0]  # < 0: saddle
tr = gs.curvature.trace(model, loss_fn, (x, y)).value                         # Hutch++
```

Every tool works on the flat vector of trainable parameters, never forms the Hessian, leaves
the model's buffers, the global RNG and `.grad` as they were, and differentiates the model in
the train/eval mode it is in (batch norm and dropout differ between the two).
"""

from gradsight.curvature._vectors import flatten, unflatten
from gradsight.curvature.density import Density, density, plot_density
from gradsight.curvature.eigen import eigenvalues, power_iteration
from gradsight.curvature.hvp import HessianOperator, hvp
from gradsight.curvature.lanczos import LanczosResult, lanczos
from gradsight.curvature.landscape import Landscape, filter_normalized, landscape, plot_landscape
from gradsight.curvature.metrics import curvature_metrics
from gradsight.curvature.power import PowerResult, power
from gradsight.curvature.trace import TraceResult, hutchinson, hutchpp, trace

__all__ = [
    "Density",
    "HessianOperator",
    "LanczosResult",
    "Landscape",
    "PowerResult",
    "TraceResult",
    "curvature_metrics",
    "density",
    "eigenvalues",
    "filter_normalized",
    "flatten",
    "hutchinson",
    "hutchpp",
    "hvp",
    "lanczos",
    "landscape",
    "plot_density",
    "plot_landscape",
    "power",
    "power_iteration",
    "trace",
    "unflatten",
]
