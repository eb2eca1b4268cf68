"""Cost of `gs.watch` against bare training, and against Cockpit when it is installed.

Prints one JSON line per (model, setting): the median step time of bare training, of the
watched loop and of the floor, measured in one process in alternating blocks so machine noise
hits all three alike. The floor is bare training plus only the reads the setting's statistics
need, at the same steps, made by hooks as the watch's are (`install_floor`): one
`torch._foreach_norm` over the gradients on gradient steps; on update steps a copy of the
weights before the optimizer step, and after it one norm of the difference and one of the
weights; on activation steps one pass (a sum) over each watched module's output. A watch can
approach the floor, not beat it; `ratio` is watched / bare and `ratio_to_floor` watched /
floor. `python_calls_per_step` counts the Python and builtin calls the watch adds to a step
(cProfile, averaged over a block): the fixed cost, without the noise of a clock.

- reference model: 8 hidden layers of 256 sigmoid units, 784 inputs, 10 classes, batch 128,
  SGD, CPU (the model the telemetry's targets are set on);
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
import cProfile
import json
import pstats
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


def install_floor(model: nn.Module, optimizer: torch.optim.Optimizer, setting: str) -> None:
    """Hooks that make a loop pay the minimal reads of `setting`'s statistics (see the module
    docstring) at the steps the watch reads them, and nothing else."""
    schedule = {"every": 1, "updates_every": 10, "activations_every": 10, **SETTINGS[setting]}
    params = [p for group in optimizer.param_groups for p in group["params"]]
    views = [p.detach() for p in model.parameters() if p.requires_grad]
    state: dict = {"step": 0, "activations": False, "before": None}

    def due(name: str) -> bool:
        return bool(schedule[name]) and state["step"] % schedule[name] == 0

    def start(module, args) -> None:
        state["activations"] = due("activations_every")

    def read_output(module, inputs, output) -> None:
        if state["activations"] and isinstance(output, torch.Tensor):
            output.detach().sum()

    def before_step(opt, args, kwargs) -> None:
        if due("every"):
            torch._foreach_norm([p.grad for p in params if p.grad is not None])
        if due("updates_every"):
            if state["before"] is None:
                state["before"] = [v.clone() for v in views]
            else:
                torch._foreach_copy_(state["before"], views)

    def after_step(opt, args, kwargs) -> None:
        if due("updates_every"):
            torch._foreach_sub_(state["before"], views)
            torch._foreach_norm(state["before"])
            torch._foreach_norm(views)
        state["step"] += 1

    model.register_forward_pre_hook(start)
    for watched in watched_modules(model):
        watched.module.register_forward_hook(read_output)
    optimizer.register_step_pre_hook(before_step)
    optimizer.register_step_post_hook(after_step)


def python_calls(run: Callable[[int], None], steps: int) -> float:
    """Python and builtin function calls per step (cProfile's count: machine-independent)."""
    profiler = cProfile.Profile()
    profiler.enable()
    run(steps)
    profiler.disable()
    return pstats.Stats(profiler).total_calls / steps


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

    def loop():
        model = build()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        return model, optimizer, lambda log: step_fn(model, optimizer, x, y, log)

    line, _ = measure_loops("watch_overhead", name, setting, loop, blocks, steps)
    return line | {"batch": batch}


def three_loops(loop: Callable, setting: str) -> tuple[dict[str, Callable[[], None]], gs.Watch]:
    """Bare, watched and floor copies of one training loop, and the watch.

    Args:
        loop: Returns a fresh `(model, optimizer, step_of)`; `step_of(log)` is one training
            step that calls `log(loss=...)` when `log` is not None.
        setting: A key of SETTINGS.
    """
    loops = {}
    for kind in ("bare", "watched", "floor"):
        model, optimizer, step_of = loop()
        log = None
        if kind == "watched":
            watch = gs.watch(model, optimizer, **SETTINGS[setting])
            log = watch.log
        if kind == "floor":
            install_floor(model, optimizer, setting)
        loops[kind] = step_of(log)
    return loops, watch


def measure_loops(benchmark, name, setting, loop, blocks, steps) -> tuple[dict, gs.Watch]:
    """The JSON line of `three_loops(loop, setting)` (see `summary`), and the closed watch."""
    loops, watch = three_loops(loop, setting)
    times = interleaved(loops, blocks, steps)
    calls = {
        kind: python_calls(lambda n, step=step: time_block(step, n), steps)
        for kind, step in loops.items()
    }
    watch.close()
    return summary(benchmark, name, setting, times, calls, blocks, steps), watch


def interleaved(loops: dict[str, Callable[[], None]], blocks: int, steps: int) -> dict:
    """Median seconds per step of each loop, timed in alternating blocks of `steps` steps."""
    for step in loops.values():
        time_block(step, 5)
    times: dict[str, list[float]] = {kind: [] for kind in loops}
    for _ in range(blocks):
        for kind, step in loops.items():
            times[kind].append(time_block(step, steps))
    return {kind: statistics.median(values) for kind, values in times.items()}


def ratios(times: dict[str, float]) -> dict[str, float]:
    """Milliseconds per step of bare, watched and floor, and their ratios."""
    bare, watched, floor = times["bare"], times["watched"], times["floor"]
    return {
        "bare_ms": round(bare * 1e3, 3),
        "watched_ms": round(watched * 1e3, 3),
        "floor_ms": round(floor * 1e3, 3),
        "ratio": round(watched / bare, 3),
        "floor_ratio": round(floor / bare, 3),
        "ratio_to_floor": round(watched / floor, 3),
    }


def summary(benchmark, name, setting, times, calls, blocks, steps) -> dict:
    """One JSON line: step times, ratios, and Python calls per step over bare training."""
    return {
        "benchmark": benchmark,
        "model": name,
        "setting": setting,
        **ratios(times),
        "python_calls_per_step": round(calls["watched"] - calls["bare"], 1),
        "floor_python_calls_per_step": round(calls["floor"] - calls["bare"], 1),
        "blocks": blocks,
        "steps_per_block": steps,
        "threads": torch.get_num_threads(),
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
