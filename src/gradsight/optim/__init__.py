"""What torch.optim lacks: Lamb, Adam without bias correction, HessianLR, the LR range test.

Importing this package makes `lamb` and `adam_no_bias_correction` available by name in
`gs.fit`, configs and the CLI (`gradsight.train.register_optimizer`), and the schedule
`hessian` (lr = c / lambda_max, re-estimated every N steps).
"""

from gradsight.optim.adam_no_bias_correction import AdamNoBiasCorrection
from gradsight.optim.hessian_lr import HessianLR, hessian_schedule
from gradsight.optim.lamb import Lamb
from gradsight.optim.lr_find import LRFindResult, lr_find
from gradsight.train.optimizers import register_optimizer
from gradsight.train.schedules import register_schedule

register_optimizer("lamb", Lamb, 1e-3)
register_optimizer("adam_no_bias_correction", AdamNoBiasCorrection, 1e-3)
register_schedule("hessian", hessian_schedule)

__all__ = [
    "AdamNoBiasCorrection",
    "HessianLR",
    "LRFindResult",
    "Lamb",
    "hessian_schedule",
    "lr_find",
]
