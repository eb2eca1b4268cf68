"""Cost of `gs.watch` at its defaults on models written as public projects write them.

- `gpt2`: Hugging Face GPT2LMHeadModel from a tiny config (4 layers, 64 wide, 4 heads,
  vocabulary 128, 32 tokens, batch 16), AdamW, trained on random tokens; with the defaults
  every block's activations, attention, residual stream and logits are measured every 10th
  step, gradient norms every step;
- `mnist_cnn`: pytorch/examples' MNIST network on 8x8 inputs with F.relu in its forward
  (the functional activations are measured through a TorchFunctionMode), Adadelta, batch 64.

Prints one JSON line per model: the median step time of bare training and of the watched
loop, measured in one process in alternating blocks so machine noise hits both alike, and
their ratio.

Run: `.venv/bin/python benchmarks/watch_real_models.py [--blocks 9] [--steps 20]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

import gradsight as gs


def gpt2() -> tuple[nn.Module, Callable, torch.optim.Optimizer]:
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging

    logging.set_verbosity_error()
    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=4, n_embd=64, n_head=4, vocab_size=128, n_positions=32, bos_token_id=0,
        eos_token_id=0,
    )  # fmt: skip
    model = GPT2LMHeadModel(config)
    tokens = torch.randint(0, 128, (16, 32), generator=torch.Generator().manual_seed(0))

    def loss(m: nn.Module) -> torch.Tensor:
        return m(tokens, labels=tokens).loss

    return model, loss, torch.optim.AdamW(model.parameters(), lr=1e-3)


class MnistNet(nn.Module):
    """pytorch/examples mnist/main.py's Net, sized for 8x8 digits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(256, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))  # (B, 32, 6, 6)
        x = F.relu(self.conv2(x))  # (B, 64, 4, 4)
        x = F.max_pool2d(x, 2)  # (B, 64, 2, 2)
        x = torch.flatten(self.dropout1(x), 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1)


def mnist_cnn() -> tuple[nn.Module, Callable, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = MnistNet()
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


def time_block(step: Callable[[], None], steps: int) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - started) / steps


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
