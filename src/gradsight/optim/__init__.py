"""What torch.optim lacks: Lamb, Adam without bias correction, and HessianLR.

`gradsight.train` offers them by name (`lamb`, `adam_no_bias_correction`, the schedule
`hessian`: lr = c / lambda_max, re-estimated every N steps) in `gs.fit`, configs and the CLI.
The LR range test, which trains, is `gradsight.train.lr_find`.
"""

from gradsight.optim.adam_no_bias_correction import AdamNoBiasCorrection
from gradsight.optim.hessian_lr import HessianLR, hessian_schedule
from gradsight.optim.lamb import Lamb

__all__ = ["AdamNoBiasCorrection", "HessianLR", "Lamb", "hessian_schedule"]
