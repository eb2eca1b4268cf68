"""LAMB: Adam with a layer-wise trust ratio (You et al. 2019), fused Adam and `_foreach_*` ops.

For each parameter tensor w with gradient g, at step t (You et al. 2019, "Large Batch
Optimization for Deep Learning: Training BERT in 76 minutes", Algorithm 2):

    m = b1 * m + (1 - b1) * g                  v = b2 * v + (1 - b2) * g^2
    m_hat = m / (1 - b1^t)                     v_hat = v / (1 - b2^t)
    u = m_hat / (sqrt(v_hat) + eps) + wd * w   (decoupled weight decay, inside the ratio)
    trust_ratio = ||w|| / ||u||                (1 when either norm is 0)
    w = w - lr * trust_ratio * u

The Adam direction u comes from one of two paths:

- "fused": torch's fused Adam kernel (`torch._fused_adam_`, on CPU and CUDA) run on a scratch
  tensor that starts at wd * w with lr = -1: one pass reads g, m, v and writes m, v and u.
  It is a private op of torch; a release may rename or drop it.
- "foreach": the `torch._foreach_*` ops torch.optim's own multi-tensor Adam is built on
  (lerp for m, mul and addcmul for v, the bias corrections as device tensors, addcdiv for u):
  several passes, no private kernel.

`implementation="auto"` takes "fused" where torch has the kernel and "foreach" otherwise, and
also from the first step whose fused call raises (a dtype or device the kernel lacks; it
checks its inputs before writing). Then two norms and one `_foreach_addcmul_` apply the step.
Each parameter's latest ratio stays in `optimizer.state[p]["trust_ratio"]` (a 0-d tensor on
the parameter's device: reading it costs the step nothing).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from gradsight.checks import check_choice
from gradsight.errors import InputError
from gradsight.optim._checks import check_adam_args

# On a CPU, tensors are updated in lists of about this many elements: the scratch tensor of
# the update direction is then a few MB, reused from the heap at every step, instead of one
# parameter-sized allocation whose fresh pages fault in at every step (measured: 17 ms
# against 30 ms per step for 19M parameters; benchmarks/optimizers.py).
CPU_CHUNK_ELEMENTS = 1 << 19
IMPLEMENTATIONS = ("auto", "fused", "foreach")


class Lamb(torch.optim.Optimizer):
    """Layer-wise Adaptive Moments for Batch training (You et al. 2019).

    Args:
        params: Parameters or parameter groups.
        lr: Learning rate (> 0).
        betas: Decay rates (b1, b2) of the first and second moments, each in [0, 1).
        eps: Added to sqrt(v_hat) (>= 0).
        weight_decay: Decoupled weight decay wd (>= 0), added to the update before the ratio.
        bias_correction: Divide the moments by (1 - b^t) (True in the paper's Algorithm 2).
        chunk_elements: Cut each device's tensors into lists of about this many elements,
            updated one after the other (the scratch memory of the update direction is one
            chunk); None chooses `CPU_CHUNK_ELEMENTS` on CPU and all tensors at once on GPUs
            (one launch of each kernel).
        implementation: "fused", "foreach" or "auto" (see the module docstring); the path in
            use is `self.implementation` after the first step.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        bias_correction: bool = True,
        chunk_elements: int | None = None,
        implementation: str = "auto",
    ) -> None:
        check_adam_args(lr, betas, eps, weight_decay)
        check_choice("implementation", implementation, IMPLEMENTATIONS)
        if implementation == "fused" and not hasattr(torch, "_fused_adam_"):
            raise InputError("this torch has no fused Adam kernel; use implementation='foreach'")
        if chunk_elements is not None and chunk_elements < 1:
            raise InputError(f"chunk_elements must be >= 1, got {chunk_elements}")
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            bias_correction=bias_correction,
        )
        super().__init__(params, defaults)
        self.chunk_elements = chunk_elements
        auto = "fused" if hasattr(torch, "_fused_adam_") else "foreach"
        self.implementation = auto if implementation == "auto" else implementation
        self._may_fall_back = implementation == "auto"

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One LAMB update of every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if any(p.grad.is_sparse for p in params):
                raise InputError("Lamb does not support sparse gradients")
            for chunk in self._chunks(params):
                self._update(group, chunk)
        return loss

    def _state(self, p: Tensor) -> dict[str, Any]:
        state = self.state[p]
        if not state:
            # The step is a float32 tensor on the parameter's device, as the fused kernel
            # reads it there (no host sync for the bias correction).
            state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["trust_ratio"] = torch.ones((), dtype=p.dtype, device=p.device)
        elif state["step"].device != p.device:  # a state dict loaded from another device
            state["step"] = state["step"].to(p.device, torch.float32)
        return state

    def _chunks(self, params: list[Tensor]) -> list[list[Tensor]]:
        """`params` by device and dtype, cut into lists of about `chunk_elements` elements."""
        chunks: list[list[Tensor]] = []
        by_kind: dict[tuple[torch.device, torch.dtype], list[Tensor]] = {}
        for p in params:
            by_kind.setdefault((p.device, p.dtype), []).append(p)
        for same in by_kind.values():
            limit = self.chunk_elements
            if limit is None:
                limit = CPU_CHUNK_ELEMENTS if same[0].device.type == "cpu" else math.inf
            chunks.append([])
            size = 0
            for p in same:
                if chunks[-1] and size + p.numel() > limit:
                    chunks.append([])
                    size = 0
                chunks[-1].append(p)
                size += p.numel()
        return chunks

    def _update(self, group: dict[str, Any], params: list[Tensor]) -> None:
        beta1, beta2 = group["betas"]
        states = [self._state(p) for p in params]
        steps = [s["step"] for s in states]
        torch._foreach_add_(steps, 1.0)
        if not group["bias_correction"]:
            # 1 - b^inf = 1: the kernel's bias correction becomes a division by one.
            inf = torch.full((), math.inf, device=params[0].device)
            steps = [inf] * len(params)
        # u starts as wd * w; the Adam direction m_hat / (sqrt(v_hat) + eps) is added to it
        # while m and v are updated.
        update = torch._foreach_mul(params, group["weight_decay"])
        moments = ([p.grad for p in params], [s["exp_avg"] for s in states])
        moments += ([s["exp_avg_sq"] for s in states],)
        if self.implementation == "fused":
            try:
                _fused_adam_direction(update, *moments, steps, beta1, beta2, group["eps"])
            except (RuntimeError, NotImplementedError):
                if not self._may_fall_back:
                    raise
                self.implementation = "foreach"
        if self.implementation == "foreach":
            _foreach_adam_direction(update, *moments, steps, beta1, beta2, group["eps"])
        # Norms stay on the device as one vector: no host sync per parameter.
        w_norm = torch.stack(torch._foreach_norm(params))  # (P,)
        u_norm = torch.stack(torch._foreach_norm(update))  # (P,)
        usable = (w_norm > 0) & (u_norm > 0)
        ratio = torch.where(usable, w_norm / u_norm.where(usable, 1.0), 1.0)  # (P,)
        torch._foreach_copy_([s["trust_ratio"] for s in states], list(ratio.unbind()))
        torch._foreach_addcmul_(params, update, list((ratio * -group["lr"]).unbind()))


def _fused_adam_direction(
    update: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    steps: list[Tensor],
    beta1: float,
    beta2: float,
    eps: float,
) -> None:
    """update += m_hat / (sqrt(v_hat) + eps), m and v updated, in one pass: torch's fused Adam
    kernel stepping `update` with lr = -1 (its own weight decay off)."""
    torch._fused_adam_(
        update, grads, exp_avgs, exp_avg_sqs, [], steps,
        lr=-1.0, beta1=beta1, beta2=beta2, weight_decay=0.0, eps=eps, amsgrad=False,
        maximize=False,
    )  # fmt: skip


def _foreach_adam_direction(
    update: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    steps: list[Tensor],
    beta1: float,
    beta2: float,
    eps: float,
) -> None:
    """The same as `_fused_adam_direction` with the `_foreach_*` ops of torch.optim's
    multi-tensor Adam: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    update += (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps). The bias corrections are device
    tensors (t may be inf: no correction) in float64, so no step waits for the host and
    (1 - b^t) keeps its digits early on."""
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
    steps = [step.double() for step in steps]  # 0-d: b^t in float64, as the fused kernel does
    correction1 = torch._foreach_pow(beta1, steps)  # c1 = 1 - b1^t
    torch._foreach_neg_(correction1)
    torch._foreach_add_(correction1, 1.0)
    correction2 = torch._foreach_pow(beta2, steps)  # sqrt(c2) = sqrt(1 - b2^t)
    torch._foreach_neg_(correction2)
    torch._foreach_add_(correction2, 1.0)
    torch._foreach_sqrt_(correction2)
    # m_hat / (sqrt(v_hat) + eps) = m / (sqrt(v) * c1 / sqrt(c2) + eps * c1): the corrections
    # fold into the denominator, one temporary and four passes over the chunk.
    scale = torch._foreach_div(correction1, correction2)
    offset = torch._foreach_mul(correction1, eps)
    denominator = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_mul_(denominator, scale)
    torch._foreach_add_(denominator, offset)
    torch._foreach_addcdiv_(update, exp_avgs, denominator)
