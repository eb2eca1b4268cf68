"""Cost of `gs.watch` at its defaults on models written as public projects write them.

- `gpt2`: the zoo's Hugging Face GPT2LMHeadModel (`gradsight.zoo.gpt2.model`) with 4 layers,
  64 wide, 4 heads, vocabulary 128, 32 tokens, batch 16, AdamW, on random tokens; with the defaults
  every block's activations, attention, residual stream and logits are measured every 10th
  step, gradient norms every step;
- `mnist_cnn`: the zoo's pytorch/examples MNIST network on 8x8 inputs, F.relu in its
  forward (measured through a TorchFunctionMode), Adadelta, batch 64.

Prints one JSON line per model: the median step time of bare training and of the watched
loop, measured in one process in alternating blocks so machine noise hits both alike, and
their ratio.

Run: `.venv/bin/python benchmarks/watch_real_models.py [--blocks 9] [--steps 20]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from watch_overhead import time_block  # this folder: run as a script

import gradsight as gs


def gpt2() -> tuple[nn.Module, Callable, torch.optim.Optimizer]:
    from transformers.utils import logging

    from gradsight.zoo import gpt2 as zoo_gpt2

    logging.set_verbosity_error()
    model = zoo_gpt2.model(vocab=128, block_size=32, n_layer=4, n_embd=64)
    tokens = torch.randint(0, 128, (16, 32), generator=torch.Generator().manual_seed(0))

    def loss(m: nn.Module) -> torch.Tensor:
        return m(tokens, labels=tokens).loss

    return model, loss, torch.optim.AdamW(model.parameters(), lr=1e-3)


def mnist_cnn() -> tuple[nn.Module, Callable, torch.optim.Optimizer]:
    from gradsight.zoo.mnist_cnn import Net

    torch.manual_seed(0)
    model = Net()
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 8, 8, generator=generator), torch.randint(0, 10, (64,))

    def loss(m: nn.Module) -> torch.Tensor:
        return F.nll_loss(m(x), y)

    return model, loss, torch.optim.Adadelta(model.parameters(), lr=1.0)


MODELS = {"gpt2": gpt2, "mnist_cnn": mnist_cnn}


def step_fn(model, loss_fn, optimizer, log=None) -> Callable[[], None]:
    def step() -> None:
        loss = loss_fn(model)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if log is not None:
            log(loss=loss)

    return step


def measure(name: str, blocks: int, steps: int) -> dict:
    bare_model, bare_loss, bare_opt = MODELS[name]()
    watched_model, watched_loss, watched_opt = MODELS[name]()
    bare = step_fn(bare_model, bare_loss, bare_opt)
    watch = gs.watch(watched_model, watched_opt)
    watched = step_fn(watched_model, watched_loss, watched_opt, watch.log)
    for warm in (bare, watched):
        time_block(warm, 10)
    bare_times, watched_times = [], []
    for _ in range(blocks):  # blocks of a multiple of 10 steps: each holds its logged steps
        bare_times.append(time_block(bare, steps))
        watched_times.append(time_block(watched, steps))
    watch.close()
    bare_s, watched_s = statistics.median(bare_times), statistics.median(watched_times)
    measured = len(watch.history.layers("act/mean"))
    return {
        "benchmark": "watch_real_models",
        "model": name,
        "setting": "default",
        "bare_ms": round(bare_s * 1e3, 3),
        "watched_ms": round(watched_s * 1e3, 3),
        "ratio": round(watched_s / bare_s, 3),
        "modules_with_activation_stats": measured,
        "blocks": blocks,
        "steps_per_block": steps,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20, help="a multiple of 10")
    parser.add_argument("--only", choices=sorted(MODELS), help="one model")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    for name in [args.only] if args.only else MODELS:
        print(json.dumps(measure(name, args.blocks, args.steps)), flush=True)


if __name__ == "__main__":
    main()
