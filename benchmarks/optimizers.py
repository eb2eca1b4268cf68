"""Time per step of gradsight's Lamb against other Lamb implementations and AdamW.

Parameter set: a transformer-like stack, 24 blocks at width 256 (qkv, out, two MLP
matrices with biases, two LayerNorms): 288 tensors, 19M parameters, float32, fixed gradients.
Cases run interleaved (each repeat times every case once, a few steps each); the median over
repeats is reported. The "floor" case streams the same bytes as one Adam-like step with a few
in-place ops on flat tensors: the memory-traffic bound a step cannot beat.

Also checks that gradsight's Lamb gives the same weights as torch_optimizer.Lamb (same
algorithm: no debiasing in either, no clamping of ||w||) after a few steps.

Prints one JSON line per case. Needs the `bench` extra (torch-optimizer, pytorch_optimizer);
a missing package skips its case. Run: `python benchmarks/optimizers.py [--device cuda]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch

from gradsight.optim import Lamb

BLOCKS, WIDTH = 24, 256
WARMUP, REPEATS, STEPS_PER_REPEAT = 2, 5, 2
LR, WEIGHT_DECAY = 1e-3, 0.01


def block_shapes(width: int) -> list[tuple[int, ...]]:
    """One transformer block's parameter shapes: 12 tensors."""
    return [
        (3 * width, width), (3 * width,), (width, width), (width,),  # attention qkv, out
        (width,), (width,),  # LayerNorm 1
        (4 * width, width), (4 * width,), (width, 4 * width), (width,),  # MLP
        (width,), (width,),  # LayerNorm 2
    ]  # fmt: skip


def make_params(device: str, seed: int = 0, blocks: int = BLOCKS, width: int = WIDTH):
    """The parameter set with fixed random gradients."""
    generator = torch.Generator().manual_seed(seed)
    params = []
    for _ in range(blocks):
        for shape in block_shapes(width):
            p = torch.randn(shape, generator=generator).mul_(0.02).to(device).requires_grad_()
            p.grad = torch.randn(shape, generator=generator).mul_(1e-3).to(device)
            params.append(p)
    return params


def optional(module: str, name: str) -> Callable | None:
    try:
        return getattr(__import__(module), name)
    except ImportError:
        return None


def factories() -> dict[str, Callable]:
    """Case name -> optimizer over a parameter list (None: package not installed)."""
    torch_optimizer_lamb = optional("torch_optimizer", "Lamb")
    pytorch_optimizer_lamb = optional("pytorch_optimizer", "Lamb")
    return {
        "gradsight.Lamb": lambda p: Lamb(p, lr=LR, weight_decay=WEIGHT_DECAY),
        "gradsight.Lamb(one chunk)": lambda p: Lamb(
            p, lr=LR, weight_decay=WEIGHT_DECAY, chunk_elements=1 << 62
        ),
        "gradsight.Lamb(foreach)": lambda p: Lamb(
            p, lr=LR, weight_decay=WEIGHT_DECAY, implementation="foreach"
        ),
        "torch_optimizer.Lamb": torch_optimizer_lamb
        and (lambda p: torch_optimizer_lamb(p, lr=LR, weight_decay=WEIGHT_DECAY, debias=True)),
        "pytorch_optimizer.Lamb": pytorch_optimizer_lamb
        and (lambda p: pytorch_optimizer_lamb(p, lr=LR, weight_decay=WEIGHT_DECAY)),
        "torch.optim.AdamW(foreach=True)": lambda p: torch.optim.AdamW(
            p, lr=LR, weight_decay=WEIGHT_DECAY, foreach=True
        ),
        "torch.optim.AdamW(foreach=False)": lambda p: torch.optim.AdamW(
            p, lr=LR, weight_decay=WEIGHT_DECAY, foreach=False
        ),
    }


class Floor:
    """Streams an Adam step's bytes: read g, m, v, w; write m, v, w (three in-place ops)."""

    def __init__(self, params: list[torch.Tensor]) -> None:
        n = sum(p.numel() for p in params)
        device = params[0].device
        self.w, self.g, self.m, self.v = (torch.rand(n, device=device) for _ in range(4))

    def step(self) -> None:
        self.m.lerp_(self.g, 0.1)  # read m, g; write m
        self.v.addcmul_(self.g, self.g, value=1e-3)  # read v, g; write v
        self.w.addcdiv_(self.m, self.v, value=-1e-3)  # read w, m, v; write w


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_cases(device: str) -> dict[str, list[float]]:
    cases = {name: make(make_params(device)) for name, make in factories().items() if make}
    cases["floor (memory traffic)"] = Floor(make_params(device))
    for opt in cases.values():
        for _ in range(WARMUP):
            opt.step()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(REPEATS):
        for name, opt in cases.items():  # interleaved: load changes hit every case alike
            synchronize(device)
            started = time.perf_counter()
            for _ in range(STEPS_PER_REPEAT):
                opt.step()
            synchronize(device)
            times[name].append((time.perf_counter() - started) / STEPS_PER_REPEAT)
    return times


@torch.no_grad()
def max_difference_from_torch_optimizer(device: str, steps: int = 5) -> float | None:
    """Largest |w_ours - w_theirs| / max|w| after `steps` identical steps (4 blocks)."""
    reference = optional("torch_optimizer", "Lamb")
    if reference is None:
        return None
    ours, theirs = make_params(device, blocks=4), make_params(device, blocks=4)
    # torch_optimizer does not debias (its `debias` scales the step instead) and clamps ||w||
    # at 10: the same algorithm is ours without bias correction and a clamp out of reach.
    opt_ours = Lamb(ours, lr=LR, weight_decay=WEIGHT_DECAY, bias_correction=False)
    opt_theirs = reference(theirs, lr=LR, weight_decay=WEIGHT_DECAY, clamp_value=1e30)
    for _ in range(steps):
        opt_ours.step()
        opt_theirs.step()
    return max(
        float((a - b).abs().max() / b.abs().max()) for a, b in zip(ours, theirs, strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    device = parser.parse_args().device
    params = make_params("cpu", blocks=BLOCKS)
    setup = {
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "tensors": len(params),
        "parameters": sum(p.numel() for p in params),
    }
    del params
    times = time_cases(device)
    baseline = statistics.median(times.get("torch_optimizer.Lamb", [float("nan")]))
    for name, samples in times.items():
        median = statistics.median(samples)
        line = {
            "case": name,
            "ms_per_step": round(1e3 * median, 2),
            "min_ms": round(1e3 * min(samples), 2),
            "speedup_vs_torch_optimizer": round(baseline / median, 2),
            **setup,
        }
        print(json.dumps(line), flush=True)
    difference = max_difference_from_torch_optimizer(device)
    print(
        json.dumps({"check": "gradsight.Lamb vs torch_optimizer.Lamb", "max_rel_diff": difference})
    )


if __name__ == "__main__":
    main()
