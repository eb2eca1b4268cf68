"""Cost of `gs.watch` against bare training, and against Cockpit when it is installed.

Prints one JSON line per (model, setting): the median step time of bare training, of the
watched loop and of the floor, measured in one process in alternating blocks so machine noise
hits all three alike. The floor is bare training plus only the reads the setting's statistics
need, at the same steps: one `torch._foreach_norm` over the gradients on gradient steps; on
update steps a copy of the weights before the optimizer step and one norm of the difference
after it; on activation steps one pass (a sum) over each watched module's output. A watch can
approach the floor, not beat it; `ratio` is watched / bare and `ratio_to_floor` watched / floor.

- reference model: 8 hidden layers of 256 sigmoid units, 784 inputs, 10 classes, batch 128,
  SGD, CPU (the model the telemetry issue sets its targets on);
- tiny model: 2 hidden layers of 32, batch 32 (where fixed per-step costs show most).

Settings: `default` (gradient norms every step; weights, updates, activations every 10 steps),
`everything` (all of it every step, activation gradients included) and `light` (gradient
norms every 5 steps, the rest every 50). With
`pip install cockpit-for-pytorch "setuptools<81"`, Cockpit's cheapest preset ("economy") is
timed on the reference model too.

Run: `.venv/bin/python benchmarks/watch_overhead.py [--blocks 7] [--steps 30]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

import gradsight as gs
from gradsight.telemetry.layers import watched_modules

SETTINGS = {
    "light": {"every": 5, "updates_every": 50, "activations_every": 50},
    "default": {},
    "everything": {"every": 1, "updates_every": 1, "activations_every": 1},
}


def sigmoid_mlp(inputs: int, width: int, hidden: int, classes: int) -> nn.Module:
    return gs.models.mlp(
        inputs, classes, depth=hidden + 1, width=width, activation="sigmoid", seed=0
    )


MODELS = {
    "reference": (lambda: sigmoid_mlp(784, 256, 8, 10), 784, 128),
    "tiny": (lambda: sigmoid_mlp(784, 32, 2, 10), 784, 32),
}


def step_fn(model: nn.Module, optimizer: torch.optim.Optimizer, x, y, log=None) -> Callable:
    def step() -> None:
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if log is not None:
            log(loss=loss)

    return step


def floor_fn(model: nn.Module, optimizer: torch.optim.Optimizer, x, y, setting: str) -> Callable:
    """Bare training plus the minimal reads of `setting`'s statistics (see the module docstring)."""
    schedule = {"every": 1, "updates_every": 10, "activations_every": 10, **SETTINGS[setting]}
    params = [p for p in model.parameters() if p.requires_grad]
    state = {"step": 0, "activations": False}

    def read_output(module, inputs, output) -> None:
        if state["activations"]:
            output.detach().sum()

    for watched in watched_modules(model):
        watched.module.register_forward_hook(read_output)

    def due(name: str) -> bool:
        return bool(schedule[name]) and state["step"] % schedule[name] == 0

    def step() -> None:
        state["activations"] = due("activations_every")
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if due("every"):
            torch._foreach_norm([p.grad for p in params])
        before = torch._foreach_mul(params, 1.0) if due("updates_every") else None
        optimizer.step()
        if before is not None:
            torch._foreach_norm(torch._foreach_sub(params, before))
        state["step"] += 1

    return step


def time_block(step: Callable[[], None], steps: int) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - started) / steps


def cockpit_step(model, optimizer, x, y):
    """Cockpit's economy preset on the same loop, or None when Cockpit is not installed."""
    try:
        from backpack import extend
        from cockpit import Cockpit, CockpitPlotter  # noqa: F401
        from cockpit.utils.configuration import configuration
    except ImportError:
        return None
    model = extend(model)
    loss_fn = extend(nn.CrossEntropyLoss(reduction="mean"))
    individual = nn.CrossEntropyLoss(reduction="none")
    cockpit = Cockpit(model.parameters(), quantities=configuration("economy"))
    state = {"step": 0}

    def step() -> None:
        out = model(x)
        loss = loss_fn(out, y)
        losses = individual(out, y)
        optimizer.zero_grad()
        with cockpit(
            state["step"],
            info={
                "batch_size": len(x),
                "individual_losses": losses,
                "loss": loss,
                "optimizer": optimizer,
            },
        ):
            loss.backward(create_graph=cockpit.create_graph(state["step"]))
        optimizer.step()
        state["step"] += 1

    return step


def measure(name: str, setting: str, blocks: int, steps: int) -> dict:
    build, inputs, batch = MODELS[name]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, inputs, generator=generator)
    y = torch.randint(0, 10, (batch,), generator=generator)
    bare_model, watched_model, floor_model = build(), build(), build()
    bare_opt = torch.optim.SGD(bare_model.parameters(), lr=0.01)
    watched_opt = torch.optim.SGD(watched_model.parameters(), lr=0.01)
    bare = step_fn(bare_model, bare_opt, x, y)
    watch = gs.watch(watched_model, watched_opt, **SETTINGS[setting])
    watched = step_fn(watched_model, watched_opt, x, y, watch.log)
    floor_opt = torch.optim.SGD(floor_model.parameters(), lr=0.01)
    floor = floor_fn(floor_model, floor_opt, x, y, setting)
    for warm in (bare, watched, floor):
        time_block(warm, 5)
    bare_times, watched_times, floor_times = [], [], []
    for _ in range(blocks):
        bare_times.append(time_block(bare, steps))
        watched_times.append(time_block(watched, steps))
        floor_times.append(time_block(floor, steps))
    watch.close()
    bare_s, watched_s = statistics.median(bare_times), statistics.median(watched_times)
    floor_s = statistics.median(floor_times)
    return {
        "benchmark": "watch_overhead",
        "model": name,
        "setting": setting,
        "batch": batch,
        "bare_ms": round(bare_s * 1e3, 3),
        "watched_ms": round(watched_s * 1e3, 3),
        "floor_ms": round(floor_s * 1e3, 3),
        "ratio": round(watched_s / bare_s, 3),
        "floor_ratio": round(floor_s / bare_s, 3),
        "ratio_to_floor": round(watched_s / floor_s, 3),
        "blocks": blocks,
        "steps_per_block": steps,
    }


def measure_cockpit(blocks: int, steps: int) -> dict | None:
    build, inputs, batch = MODELS["reference"]
    x, y = torch.randn(batch, inputs), torch.randint(0, 10, (batch,))
    model = build()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    step = cockpit_step(model, optimizer, x, y)
    if step is None:
        return None
    bare_model = build()
    bare = step_fn(bare_model, torch.optim.SGD(bare_model.parameters(), lr=0.01), x, y)
    bare_times = [time_block(bare, steps) for _ in range(blocks)]
    cockpit_times = [time_block(step, max(1, steps // 10)) for _ in range(blocks)]
    bare_s, cockpit_s = statistics.median(bare_times), statistics.median(cockpit_times)
    return {
        "benchmark": "watch_overhead",
        "model": "reference",
        "setting": "cockpit-economy",
        "batch": batch,
        "bare_ms": round(bare_s * 1e3, 3),
        "watched_ms": round(cockpit_s * 1e3, 3),
        "ratio": round(cockpit_s / bare_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=7)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    for name in MODELS:
        for setting in SETTINGS:
            print(json.dumps(measure(name, setting, args.blocks, args.steps)), flush=True)
    cockpit = measure_cockpit(args.blocks, args.steps)
    if cockpit is not None:
        print(json.dumps(cockpit), flush=True)


if __name__ == "__main__":
    main()
