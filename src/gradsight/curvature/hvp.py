"""Hessian-vector products H v of a model's loss with respect to its trainable parameters.

H = d^2 L / d theta^2 is never formed: H v is the directional derivative of the gradient,
H v = d/dt grad L(theta + t v) at t = 0 (Pearlmutter 1994, "Fast exact multiplication by
the Hessian"), at the cost of a few gradient evaluations.

Two ways to compute it:
- "reverse" (reverse-over-reverse, "double backward"): g = grad L with `create_graph=True`,
  then H v = grad (g . v). For a single batch the graph of g is built once and reused by
  every product (`retain_graph`), so each product costs one backward pass through it.
- "forward" (forward-over-reverse, `torch.func.jvp` of `torch.func.grad`): no graph is kept
  between products, but every product re-runs the forward and backward passes with dual
  numbers; some operations lack forward-mode rules (in torch 2.13, F.mse_loss fails with
  "ZeroTensors are immutable"), and the error then says to use "reverse".

"auto" is "reverse": on CPU it measured faster in both cases (benchmarks/curvature.py, an
8x256 tanh MLP with a batch of 512: one product costs ~4 gradients with the cached graph,
~5 forward-over-reverse).

The model's train/eval mode is the caller's choice and changes the function being
differentiated: with batch norm in train mode the loss is that of the batch statistics, in
eval mode that of the running statistics; dropout in train mode makes the loss random (every
forward pass here reseeds the RNG, so all products see the same dropout masks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, jvp
from torch.nn.attention import SDPBackend, sdpa_kernel

from gradsight.checks import check_choice
from gradsight.curvature._state import preserved
from gradsight.curvature._vectors import flatten, trainable, unflatten
from gradsight.errors import InputError

LossFn = Callable[[Any, Any], Tensor]
METHODS = ("auto", "reverse", "forward")


def _is_batch(data: Any) -> bool:
    return isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[1], Tensor)


def as_batches(data: Any) -> tuple[Sequence | Iterable, bool]:
    """(batches, single): one (inputs, targets) pair, or a re-iterable of such pairs."""
    if _is_batch(data):
        return [tuple(data)], True
    if isinstance(data, Tensor) or not isinstance(data, Iterable):
        raise InputError(
            f"data must be an (inputs, targets) pair or an iterable of them, got {type(data)}"
        )
    if iter(data) is data:
        raise InputError(
            f"data is a one-shot iterator ({type(data).__name__}); pass a list or a DataLoader"
        )
    return data, False


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, Tensor):
        return value.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(_to(v, device) for v in value)
    return value


class HessianOperator:
    """The linear map v -> H v for the mean loss of `model` over `data`.

    Use it as a context manager: inside, the model's buffers and the global RNG are saved
    and restored on exit (see `_state.preserved`), and gradients stay off `.grad`.

    ```python
    with HessianOperator(model, loss_fn, (x, y)) as op:
        hv = op.matvec(v)            # v, hv: flat (n,) vectors
    ```

    Args:
        model: Any nn.Module; its trainable parameters span the space of H.
        loss_fn: `loss_fn(model(inputs), targets)`, a scalar mean over the batch.
        data: One `(inputs, targets)` batch, or a re-iterable of batches (a list, a
            DataLoader); over several batches H is the size-weighted mean of their Hessians,
            the Hessian of the mean loss over all examples.
        method: "auto", "reverse" or "forward" (see the module's docstring).
        seed: Seed of the RNG before each forward pass (the same dropout masks every time).

    Attributes:
        params: The trainable parameters.
        dim: n, the number of their entries.
        matvecs: Products computed so far.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        data: Any,
        *,
        method: str = "auto",
        seed: int = 0,
    ) -> None:
        self.method = "reverse" if check_choice("method", method, METHODS) == "auto" else method
        self.model, self.loss_fn, self.seed = model, loss_fn, seed
        self.params = trainable(model)
        self.names = _names(model, self.params)
        self.dim = sum(p.numel() for p in self.params)
        self.dtype, self.device = self.params[0].dtype, self.params[0].device
        self.batches, self.single = as_batches(data)
        self.matvecs = 0
        self._cached: tuple[Tensor, ...] | None = None  # graph of g for a single batch
        self._stack: Any = None

    def __enter__(self) -> HessianOperator:
        self._stack = preserved(self.model)
        self._stack.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._cached = None
        stack, self._stack = self._stack, None
        stack.__exit__(*exc)

    def _loss(self, index: int, inputs: Any, targets: Any) -> Tensor:
        torch.manual_seed(self.seed + index)
        return self.loss_fn(self.model(_to(inputs, self.device)), _to(targets, self.device))

    def _gradient_graph(self, index: int, inputs: Any, targets: Any) -> tuple[Tensor, ...]:
        loss = self._loss(index, inputs, targets)
        return torch.autograd.grad(
            loss, self.params, create_graph=True, allow_unused=True, materialize_grads=True
        )

    def _reverse(self, index: int, inputs: Any, targets: Any, parts: list[Tensor]) -> list[Tensor]:
        if self._cached is not None:
            g = self._cached
        else:
            g = self._gradient_graph(index, inputs, targets)
            if self.single:
                self._cached = g
        # Gradients that do not depend on the parameters (a linear term) contribute zero.
        used = [i for i, gi in enumerate(g) if gi.requires_grad]
        out = [torch.zeros_like(p) for p in self.params]
        if used:
            hv = torch.autograd.grad(
                [g[i] for i in used],
                self.params,
                grad_outputs=[parts[i] for i in used],
                retain_graph=self.single,
                allow_unused=True,
                materialize_grads=True,
            )
            out = list(hv)
        return out

    def _forward(self, index: int, inputs: Any, targets: Any, parts: list[Tensor]) -> list[Tensor]:
        inputs, targets = _to(inputs, self.device), _to(targets, self.device)

        buffers = dict(self.model.named_buffers())

        def loss_of(*values: Tensor) -> Tensor:
            torch.manual_seed(self.seed + index)
            # Fresh copies: training-mode batch norm updates its running statistics in place,
            # which torch.func forbids on tensors captured from outside the transform.
            state = {
                **{k: b.clone() for k, b in buffers.items()},
                **dict(zip(self.names, values, strict=True)),
            }
            output = functional_call(self.model, state, (inputs,))
            return self.loss_fn(output, targets)

        argnums = tuple(range(len(self.params)))
        primals = tuple(p.detach() for p in self.params)
        _, hv = jvp(grad(loss_of, argnums=argnums), primals, tuple(parts))
        return list(hv)

    def matvec(self, vector: Tensor) -> Tensor:
        """H v for a flat vector v of size `dim`; returns a flat vector."""
        if self._stack is None:
            raise RuntimeError("use HessianOperator as a context manager: `with ... as op:`")
        parts = unflatten(vector.to(device=self.device, dtype=self.dtype), self.params)
        product = self._reverse if self.method == "reverse" else self._forward
        total, count = None, 0
        # The fused attention kernels have no double backward; the math one does (and gives
        # the same values): Hugging Face and nn.MultiheadAttention models call SDPA.
        with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH):
            for index, (inputs, targets) in enumerate(self.batches):
                size = len(targets)
                hv = flatten(
                    _explain(product, self.model, self.method)(index, inputs, targets, parts)
                )
                total = hv * size if total is None else total.add_(hv, alpha=size)
                count += size
        if total is None:
            raise InputError("data has no batches")
        self.matvecs += 1
        return total.div_(count).detach()

    def matmat(self, vectors: Tensor) -> Tensor:
        """H V for k flat vectors stacked as rows, (k, n) -> (k, n)."""
        return torch.stack([self.matvec(v) for v in vectors])


def _names(model: nn.Module, params: list[nn.Parameter]) -> list[str]:
    by_id = {id(p): name for name, p in model.named_parameters()}
    return [by_id[id(p)] for p in params]


def _explain(product: Callable, model: nn.Module, method: str) -> Callable:
    """`product`, re-raising its failures as one error that names the module types involved."""

    def run(*args: Any) -> list[Tensor]:
        try:
            return product(*args)
        except (RuntimeError, NotImplementedError) as error:
            kinds = sorted({type(m).__name__ for m in model.modules() if _special(m)})
            suspects = f"; modules with their own kernels: {', '.join(kinds)}" if kinds else ""
            raise RuntimeError(
                f"Hessian-vector product ({method}) failed{suspects}: {error}"
                + ("; try method='reverse'" if method == "forward" else "")
            ) from error

    return run


def _special(module: nn.Module) -> bool:
    special = (nn.RNNBase, nn.RNNCellBase, nn.modules.batchnorm._BatchNorm, nn.MultiheadAttention)
    return isinstance(module, special)


def hvp(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    vector: Tensor | Sequence[Tensor],
    *,
    method: str = "auto",
    seed: int = 0,
) -> Tensor | list[Tensor]:
    """Hessian-vector product H v of the mean loss with respect to the trainable parameters.

    H v = d/dt grad L(theta + t v) |_{t=0} (Pearlmutter 1994), exact up to rounding. Model
    buffers, the global RNG and `.grad` are left as they were.

    Args:
        model: Any nn.Module, in the train/eval mode you want differentiated (batch norm and
            dropout differ; see the module docstring).
        loss_fn: `loss_fn(model(inputs), targets)`, a scalar.
        data: One `(inputs, targets)` batch or a re-iterable of them (averaged by size).
        vector: A flat (n,) tensor, or one tensor per trainable parameter.
        method: "auto", "reverse" (double backward) or "forward" (forward-over-reverse).
        seed: RNG seed before each forward pass.

    Returns:
        H v in the same form as `vector` (flat, or a list shaped like the parameters).
    """
    with HessianOperator(model, loss_fn, data, method=method, seed=seed) as op:
        if isinstance(vector, Tensor):
            if vector.dim() != 1 or vector.numel() != op.dim:
                raise InputError(
                    f"vector must be flat with {op.dim} entries, got {tuple(vector.shape)}"
                )
            return op.matvec(vector)
        parts = list(vector)
        if [tuple(v.shape) for v in parts] != [tuple(p.shape) for p in op.params]:
            raise InputError(
                f"vector shapes {[tuple(v.shape) for v in parts]} do not match the parameters"
            )
        return unflatten(op.matvec(flatten(parts)), op.params)
