"""Transformer quantities: attention entropy and logits, the residual stream, output logits.

On the steps that log activations only:
- `attn/entropy` (nats), `attn/entropy_ratio` and `attn/logit_max` per attention module:
  the entropy H = -sum_k p_k log p_k of each query's attention distribution, averaged over
  batch, heads and queries; the ratio H / log(n) to a uniform distribution over the n keys
  it may attend (queries with n = 1 left out: causal row 0); the largest logit q.k * scale.
  Entropy near 0 means each query attends to one key (attention entropy collapse, Zhai et
  al. 2023); growing logits precede it (Dehghani et al. 2023; Wortsman et al. 2023). Read
  from the softmax of an eager attention (a 4-D `softmax` inside an attention module) or
  recomputed from the inputs of `F.scaled_dot_product_attention` (one more attention
  product, on logged steps only).
- `resid/norm` per repeated block (`telemetry.layers.residual_blocks`) whose output has
  its input's shape: the RMS of the block's output, sqrt(mean h^2), i.e. the residual
  stream's scale after that block (growth with depth in Pre-LN stacks, Xiong et al. 2020).
- `out/logit_std`, `out/logit_max` (largest |logit|) and `out/classes` (size of the last
  dimension) of the model's output tensor, or of its `.logits` (Hugging Face outputs).
"""

from __future__ import annotations

import math
from collections import defaultdict
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gradsight.telemetry.functional import FunctionTap
from gradsight.telemetry.layers import attention_modules, residual_blocks
from gradsight.telemetry.recorder import Recorder

SOFTMAX_FUNCTIONS = (F.softmax, torch.softmax, torch.Tensor.softmax)


def attention_reductions(probs: Tensor, logits: Tensor | None) -> list[Tensor]:
    """[sum of row entropies, rows, sum of entropy ratios, rows with n > 1, max logit].

    Args:
        probs: Attention probabilities (..., Q, K); masked keys have probability 0.
        logits: The logits before the softmax (masked keys very negative), or None.
    """
    p = probs.detach().float()
    entropy = -torch.special.xlogy(p, p).sum(-1)  # (..., Q)
    keys = (p > 0).sum(-1)
    several = keys > 1
    ratio = torch.where(several, entropy / keys.clamp(min=2).float().log(), 0.0)
    top = logits.detach().float().amax() if logits is not None else torch.full((), math.nan)
    return [
        entropy.sum().reshape(1),
        torch.full((1,), entropy.numel(), dtype=torch.float32, device=p.device),
        ratio.sum().reshape(1),
        several.sum().reshape(1).float(),
        top.reshape(1).to(p.device),
    ]


def sdpa_logits(args: tuple, kwargs: dict) -> Tensor:
    """The masked logits of `F.scaled_dot_product_attention(q, k, v, attn_mask, dropout_p,
    is_causal, scale, enable_gqa)`: q k^T * scale, -inf where masked. (B, H, L, S)."""
    names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale")
    bound = dict(zip(names, args, strict=False)) | kwargs
    q, k = bound["query"].detach(), bound["key"].detach()
    if k.dim() == q.dim() == 4 and k.shape[-3] != q.shape[-3]:  # grouped-query attention
        k = k.repeat_interleave(q.shape[-3] // k.shape[-3], dim=-3)
    scale = bound.get("scale") or 1.0 / math.sqrt(q.shape[-1])
    logits = (q.float() @ k.float().transpose(-2, -1)) * scale
    mask = bound.get("attn_mask")
    if mask is not None:
        mask = mask.detach()
        if mask.dtype == torch.bool:
            logits = logits.masked_fill(~mask, -math.inf)
        else:
            logits = logits + mask.float()
    if bound.get("is_causal"):
        length, keys = logits.shape[-2:]
        causal = torch.ones(length, keys, dtype=torch.bool, device=logits.device).tril()
        logits = logits.masked_fill(~causal, -math.inf)
    return logits


class TransformerStats:
    """Hooks on attention modules, repeated blocks and the model's output.

    Args:
        recorder: The watch's recorder.
        model: The watched model: its attention modules and repeated blocks are measured.
        tap: The watch's function tap (attention calls are read there).
    """

    def __init__(self, recorder: Recorder, model: nn.Module, tap: FunctionTap) -> None:
        self.recorder, self.tap = recorder, tap
        self.attention, self.blocks = attention_modules(model), residual_blocks(model)
        self.seen_attention: set[str] = set()
        self._handles: list[Any] = []
        self._stack: list[str] = []
        self._sums: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)

    def arm(self) -> None:
        """Install the hooks and handlers for this step."""
        if self._handles:
            return
        for name, module in self.attention:
            self._handles.append(module.register_forward_pre_hook(partial(self._push, name)))
            self._handles.append(module.register_forward_hook(self._pop, always_call=True))
        for name, block in self.blocks:
            hook = partial(self._on_block, name)
            self._handles.append(block.register_forward_hook(hook, with_kwargs=True))
        if self.attention:
            for function in SOFTMAX_FUNCTIONS:
                self.tap.handlers[function] = self._on_softmax
            self.tap.handlers[F.scaled_dot_product_attention] = self._on_sdpa

    def disarm(self) -> None:
        """Remove the hooks and handlers."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for function in (*SOFTMAX_FUNCTIONS, F.scaled_dot_product_attention):
            self.tap.handlers.pop(function, None)
        self._stack = []

    def start_forward(self) -> None:
        """A forward pass begins."""
        self._stack = []

    def _push(self, name: str, module, args) -> None:
        self._stack.append(name)

    def _pop(self, module, args, out) -> None:
        if self._stack:
            self._stack.pop()

    def _training(self) -> bool:
        return bool(self._stack) and torch.is_grad_enabled()

    @torch.compiler.disable
    def _on_softmax(self, function, args: tuple, kwargs: dict, out: Any) -> None:
        if not self._training() or not isinstance(out, Tensor) or out.dim() != 4:
            return
        dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
        if dim not in (-1, 3):
            return
        logits = args[0] if args and isinstance(args[0], Tensor) else None
        self._send_attention(self._stack[-1], attention_reductions(out, logits))

    @torch.compiler.disable
    def _on_sdpa(self, function, args: tuple, kwargs: dict, out: Any) -> None:
        if not self._training():
            return
        logits = sdpa_logits(args, kwargs)
        probs = torch.softmax(logits, dim=-1).nan_to_num(0.0)  # fully masked rows: 0
        self._send_attention(self._stack[-1], attention_reductions(probs, logits))

    def _send_attention(self, name: str, reductions: list[Tensor]) -> None:
        self.seen_attention.update(self._stack)  # the wrappers of an attention module too
        self._send(("attn", name), reductions, ["sum", "sum", "sum", "sum", "max"])

    @torch.compiler.disable
    def _on_block(self, name: str, module: nn.Module, args, kwargs, out) -> None:
        if not (torch.is_grad_enabled() and module.training):
            return
        x = args[0] if args else next(iter(kwargs.values()), None)
        h = out[0] if isinstance(out, (tuple, list)) and out else out
        if not (isinstance(x, Tensor) and isinstance(h, Tensor)) or x.shape != h.shape:
            return
        h = h.detach().float()
        count = torch.full((1,), h.numel(), dtype=torch.float32, device=h.device)
        self._send(("resid", name), [h.square().sum().reshape(1), count], ["sum", "sum"])

    @torch.compiler.disable
    def on_model_output(self, out: Any) -> None:
        """Statistics of the model's logits (called from the watch's root forward hook)."""
        logits = getattr(out, "logits", None) if not isinstance(out, Tensor) else out
        if not isinstance(logits, Tensor) or logits.dim() < 2 or not logits.is_floating_point():
            return
        y = logits.detach().float()
        count = torch.full((1,), y.numel(), dtype=torch.float32, device=y.device)
        classes = torch.full((1,), y.shape[-1], dtype=torch.float32, device=y.device)
        reductions = [y.sum().reshape(1), y.square().sum().reshape(1), count]
        reductions += [y.abs().amax().reshape(1), classes]
        self._send(("out", ""), reductions, ["sum", "sum", "sum", "max", "max"])

    def _send(self, key: tuple[str, str], tensors: list[Tensor], ops: list[str]) -> None:
        self.recorder.send(tensors, lambda step, values: self._sums[key].append(values), ops)

    def on_host(self, step: int) -> None:
        """Combine the calls of the step and log."""
        history = self.recorder.history
        for (group, name), calls in self._sums.items():
            sums = [np.sum([c[i][0] for c in calls]) for i in range(len(calls[0]))]
            maxima = [np.max([c[i][0] for c in calls]) for i in range(len(calls[0]))]
            if group == "attn":
                entropy, rows, ratio, several, _ = sums
                values = {
                    "attn/entropy": entropy / max(rows, 1),
                    "attn/entropy_ratio": ratio / several if several else math.nan,
                    "attn/logit_max": maxima[4],
                }
            elif group == "resid":
                values = {"resid/norm": math.sqrt(sums[0] / max(sums[1], 1))}
            else:
                total, squares, count = sums[:3]
                mean = total / max(count, 1)
                values = {
                    "out/logit_std": math.sqrt(max(squares / max(count, 1) - mean**2, 0.0)),
                    "out/logit_max": maxima[3],
                    "out/classes": maxima[4],
                }
            history.log_many(step, values, name)
        self._sums = defaultdict(list)

    @property
    def pending(self) -> bool:
        """Whether statistics wait for the host."""
        return bool(self._sums)
