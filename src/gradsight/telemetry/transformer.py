"""Transformer quantities: attention entropy and logits, the residual stream, output logits.

On the steps that log activations only (attention on every other one of them):
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

import inspect
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
# Attention statistics on every ATTENTION_EVERY-th step that logs activations.
ATTENTION_EVERY = 2
ATTENTION_FUNCTIONS = (F.scaled_dot_product_attention, F.multi_head_attention_forward)


def attention_reductions(probs: Tensor, logits: Tensor | None) -> Tensor:
    """(4,): [sum of row entropies, sum of entropy ratios, rows with n > 1, max logit].

    Args:
        probs: Attention probabilities (..., Q, K); masked keys have probability 0.
        logits: The logits before the softmax (masked keys very negative), or None.
    """
    p = probs.detach().float()
    entropy = torch.special.xlogy(p, p).sum(-1).neg_()  # (..., Q)
    keys = (p > 0).sum(-1)
    several = keys > 1
    ratio = entropy / keys.clamp_(min=2).float().log_()
    top = logits.detach().amax().float() if logits is not None else p.new_tensor(math.nan)
    return torch.stack([entropy.sum(), ratio[several].sum(), several.sum().float(), top])


def sdpa_logits(args: tuple, kwargs: dict) -> Tensor:
    """The masked logits of `F.scaled_dot_product_attention(q, k, v, attn_mask, dropout_p,
    is_causal, scale, enable_gqa)`: q k^T * scale, -inf where masked. (B, H, L, S)."""
    q = (args[0] if args else kwargs["query"]).detach()
    k = (args[1] if len(args) > 1 else kwargs["key"]).detach()
    mask = args[3] if len(args) > 3 else kwargs.get("attn_mask")
    causal = args[5] if len(args) > 5 else kwargs.get("is_causal", False)
    scale = (args[6] if len(args) > 6 else kwargs.get("scale")) or 1.0 / math.sqrt(q.shape[-1])
    if k.dim() == q.dim() == 4 and k.shape[-3] != q.shape[-3]:  # grouped-query attention
        k = k.repeat_interleave(q.shape[-3] // k.shape[-3], dim=-3)
    logits = torch.matmul(q.float(), k.float().transpose(-2, -1)).mul_(scale)
    if mask is not None:
        if mask.dtype == torch.bool:
            logits.masked_fill_(~mask.detach(), -math.inf)
        else:
            logits.add_(mask.detach().float())
    if causal:
        length, keys = logits.shape[-2:]
        above = torch.ones(length, keys, dtype=torch.bool, device=logits.device).triu_(1)
        logits.masked_fill_(above, -math.inf)
    return logits


MHA_PARAMETERS = tuple(inspect.signature(F.multi_head_attention_forward).parameters)


def mha_logits(args: tuple, kwargs: dict) -> Tensor | None:
    """The masked logits (N, H, L, S) of `F.multi_head_attention_forward` (nn.MultiheadAttention,
    nn.TransformerEncoderLayer), recomputed from its inputs and projection weights; None for
    the rare variants not handled (bias_k/bias_v, zero attention, static keys)."""
    a = dict(zip(MHA_PARAMETERS, args, strict=False)) | kwargs
    if a.get("bias_k") is not None or a.get("add_zero_attn") or a.get("static_k") is not None:
        return None
    query, key = a["query"].detach(), a["key"].detach()  # (L, N, E), (S, N, E)
    heads, embed = a["num_heads"], query.shape[-1]
    if a.get("use_separate_proj_weight"):
        w_q, w_k = a["q_proj_weight"], a["k_proj_weight"]
    else:
        w_q, w_k = a["in_proj_weight"][:embed], a["in_proj_weight"][embed : 2 * embed]
    bias = a.get("in_proj_bias")
    b_q, b_k = (bias[:embed], bias[embed : 2 * embed]) if bias is not None else (None, None)
    if query.dim() == 2:  # unbatched
        query, key = query.unsqueeze(1), key.unsqueeze(1)
    q = F.linear(query.float(), w_q.detach().float(), None if b_q is None else b_q.detach())
    k = F.linear(key.float(), w_k.detach().float(), None if b_k is None else b_k.detach())
    length, batch, _ = q.shape
    q = q.reshape(length, batch, heads, -1).permute(1, 2, 0, 3)  # (N, H, L, d)
    k = k.reshape(k.shape[0], batch, heads, -1).permute(1, 2, 0, 3)  # (N, H, S, d)
    logits = torch.matmul(q, k.transpose(-2, -1)).mul_(1.0 / math.sqrt(q.shape[-1]))
    mask = a.get("attn_mask")
    if mask is not None:
        mask = mask.detach().reshape(-1, heads, *logits.shape[-2:]) if mask.dim() == 3 else mask
        if mask.dtype == torch.bool:
            logits = logits.masked_fill(mask, -math.inf)  # True = not allowed, here
        else:
            logits = logits + mask.float()
    elif a.get("is_causal"):
        above = torch.ones(*logits.shape[-2:], dtype=torch.bool, device=logits.device).triu_(1)
        logits.masked_fill_(above, -math.inf)
    padding = a.get("key_padding_mask")
    if padding is not None:
        padding = padding.detach().reshape(batch, 1, 1, -1)
        if padding.dtype == torch.bool:
            logits = logits.masked_fill(padding, -math.inf)
        else:
            logits = logits + padding.float()
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
        self.classes = 0  # the last dimension of the model's logits
        self._arms = 0
        self._sums: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)

    def arm(self) -> None:
        """Install the hooks and handlers for this step: attention on every other step
        that logs activations (intercepting an attention module's calls costs about as much
        as all the other activation statistics of a small transformer)."""
        if self._handles:
            return
        self._arms += 1
        hook = self.recorder.hook
        attention = self.attention if self._arms % ATTENTION_EVERY == 1 % ATTENTION_EVERY else []
        for name, module in attention:
            self._handles.append(module.register_forward_pre_hook(hook(partial(self._push, name))))
            self._handles.append(module.register_forward_hook(hook(self._pop), always_call=True))
        for name, block in self.blocks:
            on_block = hook(partial(self._on_block, name))
            self._handles.append(block.register_forward_hook(on_block, with_kwargs=True))
        if attention:
            for function in SOFTMAX_FUNCTIONS:
                self.tap.handlers[function] = self._on_softmax
            self.tap.handlers[F.scaled_dot_product_attention] = self._on_sdpa
            self.tap.handlers[F.multi_head_attention_forward] = self._on_mha

    def disarm(self) -> None:
        """Remove the hooks and handlers."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for function in (*SOFTMAX_FUNCTIONS, *ATTENTION_FUNCTIONS):
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

    def _on_softmax(self, function, args: tuple, kwargs: dict, out: Any) -> bool:
        if not self._training() or not isinstance(out, Tensor) or out.dim() != 4:
            return False
        dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
        if dim not in (-1, 3):
            return False
        logits = args[0] if args and isinstance(args[0], Tensor) else None
        self._send_attention(self._stack[-1], out, logits)
        return True

    def _on_sdpa(self, function, args: tuple, kwargs: dict, out: Any) -> bool:
        if not self._training():
            return False
        logits = sdpa_logits(args, kwargs)
        probs = torch.softmax(logits, dim=-1).nan_to_num_(0.0)  # fully masked rows: 0
        self._send_attention(self._stack[-1], probs, logits)
        return True

    def _on_mha(self, function, args: tuple, kwargs: dict, out: Any) -> bool:
        if not self._training():
            return False
        logits = mha_logits(args, kwargs)
        if logits is None:
            return False
        probs = torch.softmax(logits, dim=-1).nan_to_num_(0.0)
        self._send_attention(self._stack[-1], probs, logits)
        return True

    def _send_attention(self, name: str, probs: Tensor, logits: Tensor | None) -> None:
        self.seen_attention.update(self._stack)  # the wrappers of an attention module too
        rows = probs[..., 0].numel() * self.recorder.world
        sums = attention_reductions(probs, logits)
        self._send(("attn", name), [sums[:3], sums[3:]], ["sum", "max"], rows)

    def _on_block(self, name: str, module: nn.Module, args, kwargs, out) -> None:
        if not (torch.is_grad_enabled() and module.training):
            return
        x = args[0] if args else next(iter(kwargs.values()), None)
        h = out[0] if isinstance(out, (tuple, list)) and out else out
        if not (isinstance(x, Tensor) and isinstance(h, Tensor)) or x.shape != h.shape:
            return
        square = torch.linalg.vector_norm(h.detach().float()).square().reshape(1)
        self._send(("resid", name), [square], ["sum"], h.numel() * self.recorder.world)

    def on_model_output(self, out: Any) -> None:
        """Statistics of the model's logits (called from the watch's root forward hook)."""
        logits = getattr(out, "logits", None) if not isinstance(out, Tensor) else out
        if not isinstance(logits, Tensor) or logits.dim() < 2 or not logits.is_floating_point():
            return
        y = logits.detach().float()
        self.classes = y.shape[-1]
        sums = torch.stack([y.sum(), torch.linalg.vector_norm(y).square()])
        top = y.abs().amax().reshape(1)
        self._send(("out", ""), [sums, top], ["sum", "max"], y.numel() * self.recorder.world)

    def _send(self, key: tuple[str, str], tensors: list[Tensor], ops: list[str], count: int):
        """Queue (sums, maxima) of one call; `count` is the number of values behind them."""

        def keep(step: int, values: list) -> None:
            self._sums[key].append((values, count))

        self.recorder.send(tensors, keep, ops)

    def on_host(self, step: int) -> None:
        """Combine the calls of the step and log."""
        history = self.recorder.history
        for (group, name), calls in self._sums.items():
            sums = np.sum([values[0] for values, _ in calls], axis=0)
            count = sum(n for _, n in calls)
            if group == "attn":
                entropy, ratio, several = sums
                values = {
                    "attn/entropy": entropy / max(count, 1),
                    "attn/entropy_ratio": ratio / several if several else math.nan,
                    "attn/logit_max": max(values[1][0] for values, _ in calls),
                }
            elif group == "resid":
                values = {"resid/norm": math.sqrt(sums[0] / max(count, 1))}
            else:
                mean = sums[0] / max(count, 1)
                values = {
                    "out/logit_std": math.sqrt(max(sums[1] / max(count, 1) - mean**2, 0.0)),
                    "out/logit_max": max(values[1][0] for values, _ in calls),
                    "out/classes": self.classes,
                }
            history.log_many(step, values, name)
        self._sums = defaultdict(list)

    @property
    def pending(self) -> bool:
        """Whether statistics wait for the host."""
        return bool(self._sums)
