"""Adam without bias correction: what Kingma & Ba's correction of the moments is for.

The moments start at zero, so after t steps of gradients with mean E[g] (Kingma & Ba 2015,
"Adam: A Method for Stochastic Optimization", section 3):

    m_t = (1 - b1) * sum_i b1^(t-i) g_i      E[m_t] = E[g] * (1 - b1^t)
    v_t = (1 - b2) * sum_i b2^(t-i) g_i^2    E[v_t] = E[g^2] * (1 - b2^t)

Adam divides by (1 - b^t) to undo this. Without it the first steps are
m_t / sqrt(v_t) ~ (1 - b1^t) / sqrt(1 - b2^t) times Adam's: 0.1 / sqrt(0.001) = 3.16 times
larger at t = 1 with the default betas, shrinking towards 1 as t grows (b2 forgets slowly).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from gradsight.optim._checks import check_adam_args


class AdamNoBiasCorrection(torch.optim.Optimizer):
    """Adam with uncorrected moments.

    For each parameter w with gradient g (plus weight_decay * w, coupled as in torch's Adam):

        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g^2
        w = w - lr * m / (sqrt(v) + eps)

    Args:
        params: Parameters or parameter groups.
        lr: Learning rate (> 0).
        betas: Decay rates (b1, b2), each in [0, 1).
        eps: Added to sqrt(v) (>= 0).
        weight_decay: Added to the gradient as weight_decay * w (>= 0), as torch.optim.Adam does.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        check_adam_args(lr, betas, eps, weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One update of every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            beta1, beta2 = group["betas"]
            states = [self._state(p) for p in params]
            grads = [p.grad for p in params]
            if group["weight_decay"]:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            exp_avgs = [s["exp_avg"] for s in states]
            exp_avg_sqs = [s["exp_avg_sq"] for s in states]
            torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
            torch._foreach_mul_(exp_avg_sqs, beta2)
            torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
            denom = torch._foreach_sqrt(exp_avg_sqs)
            torch._foreach_add_(denom, group["eps"])
            torch._foreach_addcdiv_(params, exp_avgs, denom, -group["lr"])
        return loss

    def _state(self, p: Tensor) -> dict[str, Any]:
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["step"] += 1
        return state
