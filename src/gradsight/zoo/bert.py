"""A tiny BERT classifier fine-tuned as Hugging Face's text-classification examples do.

The model is `transformers.BertForSequenceClassification(BertConfig(...))`, initialised from
the config (nothing is downloaded). The loop follows huggingface/transformers
`examples/pytorch/text-classification/run_glue_no_trainer.py`: a shuffled DataLoader,
AdamW without decay on biases and LayerNorm weights, a linear schedule with warmup
(`get_scheduler("linear", ...)`), and `outputs.loss` from labels passed to the model; the
gradient is clipped to norm 1.0 as `Trainer` does (`max_grad_norm`).

The task is generated: token sequences `[CLS] w_1 .. w_n [SEP]` whose words lean towards one
of four word groups; the label is that group, so it can be read off the tokens.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gradsight.zoo.base import AfterStep, Setup, grad_norms, norm_summary

PAD, CLS, SEP = 0, 1, 2
SPECIAL = 3  # ids below this are special tokens


def make_dataset(
    n: int, length: int, vocab: int, labels: int, bias: float, generator: torch.Generator
) -> TensorDataset:
    """Sequences whose words come from the label's group with probability `bias` (else any).

    Returns:
        input_ids (n, length + 2), attention_mask (n, length + 2), labels (n,).
    """
    words = vocab - SPECIAL
    group = words // labels
    y = torch.randint(labels, (n,), generator=generator)
    anywhere = torch.randint(words, (n, length), generator=generator)
    in_group = y[:, None] * group + torch.randint(group, (n, length), generator=generator)
    leaning = torch.rand(n, length, generator=generator) < bias
    body = torch.where(leaning, in_group, anywhere) + SPECIAL
    ids = torch.cat([torch.full((n, 1), CLS), body, torch.full((n, 1), SEP)], dim=1)
    return TensorDataset(ids, torch.ones_like(ids), y)


def build(
    seed: int = 0,
    *,
    hidden_size: int = 32,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    intermediate_size: int = 64,
    vocab: int = 64,
    length: int = 22,
    labels: int = 4,
    bias: float = 0.3,
    batch_size: int = 32,
    lr: float = 2e-3,
    warmup: float = 0.1,
    weight_decay: float = 0.01,
    max_grad_norm: float = 1.0,
    initializer_range: float = 0.02,
) -> Setup:
    """A BERT sequence classifier on the word-group task, with the HF fine-tuning loop.

    Args:
        seed: Seeds the data, the initialisation and the shuffling.
        hidden_size: Width.
        num_hidden_layers: Encoder layers.
        num_attention_heads: Attention heads.
        intermediate_size: Width of the feed-forward layers.
        vocab: Vocabulary size, special tokens included.
        length: Words per sequence (without [CLS] and [SEP]).
        labels: Number of classes (word groups).
        bias: Probability that a word comes from the label's group.
        batch_size: Sequences per step.
        lr: Peak learning rate.
        warmup: Fraction of the steps of linear warmup.
        weight_decay: AdamW decay (not on biases and LayerNorm weights).
        max_grad_norm: Gradient norm clip (0: none).
        initializer_range: Std of the normal initialisation (BERT's 0.02).
    """
    from transformers import BertConfig, BertForSequenceClassification, get_scheduler

    generator = torch.Generator().manual_seed(seed)
    train_set = make_dataset(2048, length, vocab, labels, bias, generator)
    val_set = make_dataset(256, length, vocab, labels, bias, generator)
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator)

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=length + 2,
        num_labels=labels,
        initializer_range=initializer_range,
        pad_token_id=PAD,
    )
    model = BertForSequenceClassification(config)
    no_decay = ["bias", "LayerNorm.weight"]
    grouped = [
        {
            "params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
            "weight_decay": weight_decay,
        },
        {
            "params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
            "weight_decay": 0.0,
        },
    ]
    optimizer = torch.optim.AdamW(grouped, lr=lr)
    clip_norms: list[torch.Tensor] = []

    def train(steps: int, after_step: AfterStep) -> None:
        scheduler = get_scheduler("linear", optimizer, int(warmup * steps), steps)
        model.train()
        done = 0
        while done < steps:  # epochs
            for input_ids, attention_mask, y in loader:
                outputs = model(input_ids=input_ids, attention_mask=attention_mask, labels=y)
                loss = outputs.loss
                loss.backward()
                if max_grad_norm > 0:
                    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
                    clip_norms.append(norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                after_step(loss.detach())
                done += 1
                if done == steps:
                    break

    def probe() -> dict[str, float]:
        return _probe(model, val_set, clip_norms)

    return Setup(model, optimizer, train, probe)


def _probe(
    model: nn.Module, val: TensorDataset, clip_norms: list[torch.Tensor]
) -> dict[str, float]:
    """Held-out loss and accuracy, attention sharpness, pooler saturation, layer gradients."""
    input_ids, attention_mask, y = val.tensors
    pooled = {}

    def keep(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        pooled["tanh"] = out.detach()  # the pooler's tanh output: (B, hidden)

    hook = model.bert.pooler.activation.register_forward_hook(keep)
    model.set_attn_implementation("eager")  # sdpa does not return the attention weights
    try:
        model.zero_grad(set_to_none=True)
        out = model(
            input_ids=input_ids, attention_mask=attention_mask, labels=y, output_attentions=True
        )
        out.loss.backward()
    finally:
        hook.remove()
        model.set_attn_implementation("sdpa")
    attn = torch.stack([a.detach() for a in out.attentions])  # (L, B, H, T, T)
    layers = len(model.bert.encoder.layer)
    norms = grad_norms(
        model,
        {
            "first": "bert.encoder.layer.0.",
            "last": f"bert.encoder.layer.{layers - 1}.",
            "all": "",
        },
    )
    result = {
        "val_loss": float(out.loss.detach()),
        "val_accuracy": float((out.logits.argmax(1) == y).float().mean()),
        "chance_loss": math.log(out.logits.shape[1]),
        "attn_max_prob": float(attn.amax(-1).mean()),
        "pooler_saturated": float((pooled["tanh"].abs() > 0.975).float().mean()),
        "grad_first_layer": norms["first"],
        "grad_last_layer": norms["last"],
        "grad_norm": norms["all"],
    }
    result.update(norm_summary(clip_norms))
    model.zero_grad(set_to_none=True)
    return result
