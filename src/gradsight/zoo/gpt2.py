"""A tiny GPT-2 trained as nanoGPT and Hugging Face's causal-LM examples train it.

The model is `transformers.GPT2LMHeadModel(GPT2Config(...))`, initialised from the config
(nothing is downloaded). The loop follows karpathy/nanoGPT `train.py`: random windows of a
token stream (`get_batch`), AdamW with betas (0.9, 0.95) and weight decay 0.1 on the
matrices only (`configure_optimizers`), linear warmup then cosine decay, and
`clip_grad_norm_(model.parameters(), 1.0)` before every step. The stream is a sparse random
Markov chain, so a model that learns it ends far below the uniform loss log(vocab).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gradsight.zoo.base import (
    AfterStep,
    Setup,
    chain_entropy,
    grad_norms,
    norm_summary,
    sample_markov,
    sparse_markov,
)


def configure_optimizers(
    model: nn.Module, weight_decay: float, lr: float, betas: tuple[float, float]
) -> torch.optim.AdamW:
    """AdamW with decay on 2-D parameters only, after nanoGPT's `configure_optimizers`."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=betas)


def remove_layer_norms(model: nn.Module) -> None:
    """Replace every LayerNorm of the GPT-2 stack (ln_1, ln_2, ln_f) by nn.Identity."""
    for block in model.transformer.h:
        block.ln_1 = nn.Identity()
        block.ln_2 = nn.Identity()
    model.transformer.ln_f = nn.Identity()


def build(
    seed: int = 0,
    *,
    n_layer: int = 2,
    n_embd: int = 48,
    n_head: int = 4,
    vocab: int = 64,
    block_size: int = 32,
    batch_size: int = 16,
    successors: int = 3,
    lr: float = 3e-3,
    warmup: float = 0.1,
    weight_decay: float = 0.1,
    grad_clip: float = 1.0,
    initializer_range: float = 0.02,
    layer_norm: bool = True,
) -> Setup:
    """A GPT-2 language model on a Markov-chain stream, with nanoGPT's optimizer and loop.

    Args:
        seed: Seeds the chain, the stream, the initialisation and the batches.
        n_layer: Transformer blocks.
        n_embd: Width of the residual stream.
        n_head: Attention heads.
        vocab: Vocabulary size (token 0 doubles as bos/eos).
        block_size: Context length (n_positions) and window length.
        batch_size: Windows per step.
        successors: Possible next tokens of each token in the chain.
        lr: Peak learning rate.
        warmup: Fraction of the steps of linear warmup (0: none).
        weight_decay: AdamW decay of the matrices.
        grad_clip: Gradient norm clip (0: none).
        initializer_range: Std of the normal initialisation (GPT-2's 0.02).
        layer_norm: False replaces every LayerNorm by nn.Identity.
    """
    from transformers import GPT2Config, GPT2LMHeadModel, get_cosine_schedule_with_warmup

    generator = torch.Generator().manual_seed(seed)
    chain = sparse_markov(vocab, successors, generator)
    train_data = sample_markov(chain, 64, 1024, generator).reshape(-1)  # (65536,)
    val_data = sample_markov(chain, 16, block_size + 1, generator)  # (16, T + 1)

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=vocab,
        n_positions=block_size,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        resid_pdrop=0.0,  # nanoGPT pre-trains without dropout
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        initializer_range=initializer_range,
        bos_token_id=0,
        eos_token_id=0,
    )
    model = GPT2LMHeadModel(config)
    if not layer_norm:
        remove_layer_norms(model)
    optimizer = configure_optimizers(model, weight_decay, lr, (0.9, 0.95))
    clip_norms: list[torch.Tensor] = []

    def get_batch() -> torch.Tensor:
        ix = torch.randint(len(train_data) - block_size, (batch_size,), generator=generator)
        return torch.stack([train_data[i : i + block_size] for i in ix.tolist()])  # (B, T)

    def train(steps: int, after_step: AfterStep) -> None:
        scheduler = get_cosine_schedule_with_warmup(optimizer, int(warmup * steps), steps)
        model.train()
        for _ in range(steps):
            x = get_batch()
            loss = model(input_ids=x, labels=x).loss  # the model shifts the labels itself
            loss.backward()
            if grad_clip > 0:
                clip_norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            after_step(loss.detach())

    def probe() -> dict[str, float]:
        return _probe(model, val_data, chain, clip_norms)

    return Setup(model, optimizer, train, probe)


def _probe(
    model: nn.Module, val: torch.Tensor, chain: torch.Tensor, clip_norms: list[torch.Tensor]
) -> dict[str, float]:
    """Held-out loss, attention sharpness, residual-stream size and per-block gradients."""
    x = val[:, :-1]
    captured = {}

    def keep_input(module: nn.Module, args: tuple) -> None:
        captured["resid"] = args[0].detach()  # the residual stream before ln_f: (B, T, C)

    hook = model.transformer.ln_f.register_forward_pre_hook(keep_input)
    model.set_attn_implementation("eager")  # sdpa does not return the attention weights
    try:
        model.zero_grad(set_to_none=True)
        out = model(input_ids=x, labels=x, output_attentions=True, output_hidden_states=True)
        out.loss.backward()
    finally:
        hook.remove()
        model.set_attn_implementation("sdpa")
    attn = torch.stack([a.detach() for a in out.attentions])  # (L, B, H, T, T)
    entropy = -(attn * attn.clamp_min(1e-12).log()).sum(-1)  # (L, B, H, T)
    positions = torch.arange(1, attn.shape[-1] + 1, dtype=attn.dtype)
    uniform = positions.log()  # entropy of uniform causal attention at each query
    late = slice(attn.shape[-1] // 2, None)  # queries with enough keys to tell
    layers = len(model.transformer.h)
    norms = grad_norms(
        model,
        {"first": "transformer.h.0.", "last": f"transformer.h.{layers - 1}.", "all": ""},
    )
    hidden = out.hidden_states[0].detach()
    result = {
        "val_loss": float(out.loss.detach()),
        "chain_entropy": chain_entropy(chain, val),
        "uniform_loss": math.log(chain.shape[0]),
        "attn_max_prob": float(attn.amax(-1)[..., late].mean()),
        "attn_entropy_fraction": float((entropy[..., late] / uniform[late]).mean()),
        "embed_rms": float(hidden.square().mean().sqrt()),
        "resid_rms": float(captured["resid"].square().mean().sqrt()),
        "grad_first_block": norms["first"],
        "grad_last_block": norms["last"],
        "grad_norm": norms["all"],
    }
    result.update(norm_summary(clip_norms))
    model.zero_grad(set_to_none=True)
    return result


def model(seed: int = 0, *, vocab: int = 32, block_size: int = 16, **config) -> nn.Module:
    """A fresh tiny GPT2LMHeadModel (2 layers, 32 wide, 4 heads, no dropout), as a model
    factory for `gs.doctor`: `functools.partial(model, vocab=...)` pickles for executors."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    settings = {"n_embd": 32, "n_layer": 2, "n_head": 4, "resid_pdrop": 0.0}
    settings |= {"embd_pdrop": 0.0, "attn_pdrop": 0.0, **config}
    return GPT2LMHeadModel(
        GPT2Config(
            vocab_size=vocab, n_positions=block_size, bos_token_id=0, eos_token_id=0, **settings
        )
    )


def next_token_data(
    seed: int = 0, *, vocab: int = 32, block_size: int = 16, windows: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) of next-token prediction on a sparse Markov chain: windows (N, T)
    and the same windows shifted by one token, for `gs.doctor(..., (inputs, targets))`."""
    generator = torch.Generator().manual_seed(seed)
    chain = sparse_markov(vocab, 3, generator)
    tokens = sample_markov(chain, windows, block_size + 1, generator)  # (N, T + 1)
    return tokens[:, :-1], tokens[:, 1:]
