"""Cost of `gs.watch` at its defaults on models written as public projects write them.

- `gpt2`: the zoo's Hugging Face GPT2LMHeadModel (`gradsight.zoo.gpt2.model`) with 4 layers,
  64 wide, 4 heads, vocabulary 128, 32 tokens, batch 16, AdamW, on random tokens; with the defaults
  every block's activations, attention, residual stream and logits are measured every 10th
  step, gradient norms every step;
- `mnist_cnn`: the zoo's pytorch/examples MNIST network on 8x8 inputs, F.relu in its
  forward (measured through a TorchFunctionMode), Adadelta, batch 64.

Prints one JSON line per model and setting (`default`; `light`: gradient norms every 5
steps, the rest every 50), with the same fields as `watch_overhead.py`: the median step time
of bare training, of the watched loop and of the floor (bare training plus only the reads the
statistics need, `watch_overhead.install_floor`), measured in one process in alternating
blocks so machine noise hits all three alike, their ratios, and the Python calls the watch
adds per step. The floor reads module outputs only: functional activations (the CNN's
F.relu) and attention probabilities, which the watch also measures, are not in it.

Run: `.venv/bin/python benchmarks/watch_real_models.py [--blocks 9] [--steps 20]`.
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from watch_overhead import measure_loops  # this folder: run as a script


def gpt2(device: str = "cpu") -> tuple[nn.Module, Callable, torch.optim.Optimizer]:
    from transformers.utils import logging

    from gradsight.zoo import gpt2 as zoo_gpt2

    logging.set_verbosity_error()
    model = zoo_gpt2.model(vocab=128, block_size=32, n_layer=4, n_embd=64).to(device)
    tokens = torch.randint(0, 128, (16, 32), generator=torch.Generator().manual_seed(0))
    tokens = tokens.to(device)

    def loss(m: nn.Module) -> torch.Tensor:
        return m(tokens, labels=tokens).loss

    return model, loss, torch.optim.AdamW(model.parameters(), lr=1e-3)


def mnist_cnn(device: str = "cpu") -> tuple[nn.Module, Callable, torch.optim.Optimizer]:
    from gradsight.zoo.mnist_cnn import Net

    torch.manual_seed(0)
    model = Net().to(device)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 8, 8, generator=generator).to(device)
    y = torch.randint(0, 10, (64,), generator=generator).to(device)

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


def measure(name: str, setting: str, blocks: int, steps: int) -> dict:
    def loop():
        model, loss_fn, optimizer = MODELS[name]()
        return model, optimizer, lambda log: step_fn(model, loss_fn, optimizer, log)

    # Blocks of a multiple of 10 steps: each holds its logged steps.
    line, watch = measure_loops("watch_real_models", name, setting, loop, blocks, steps)
    return line | {"modules_with_activation_stats": len(watch.history.layers("act/mean"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20, help="a multiple of 10")
    parser.add_argument("--only", choices=sorted(MODELS), help="one model")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    for name in [args.only] if args.only else MODELS:
        for setting in ("default", "light"):
            print(json.dumps(measure(name, setting, args.blocks, args.steps)), flush=True)


if __name__ == "__main__":
    main()
