"""Overhead of `gs.fit` over a bare hand-written PyTorch loop (same model, data, steps).

Prints one JSON line: median seconds per step of each, and their ratio.
Run: `.venv/bin/python benchmarks/fit_overhead.py`.
"""

from __future__ import annotations

import json
import statistics
import time

import torch

import gradsight as gs

STEPS = 300
REPEATS = 5
BATCH = 64


def build() -> torch.nn.Module:
    return gs.models.mlp(64, 10, depth=4, width=128, activation="relu", init="he_normal", seed=0)


def bare_loop(task: gs.Task) -> float:
    model = build()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = task.x_train, task.y_train
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    step = 0
    while step < STEPS:
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x) - BATCH + 1, BATCH):
            index = order[start : start + BATCH]
            loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step == STEPS:
                break
    return (time.perf_counter() - started) / STEPS


class StepTimer(gs.train.Callback):
    """Times the training steps alone (fit's `time_s` also holds the final evaluation)."""

    def on_fit_start(self, state: gs.train.FitState) -> None:
        self.started = time.perf_counter()

    def on_fit_end(self, state: gs.train.FitState) -> None:
        self.seconds = time.perf_counter() - self.started


def gradsight_fit(task: gs.Task) -> float:
    timer = StepTimer()
    gs.fit(
        build(), task, optimizer="adam", lr=1e-3, steps=STEPS, batch_size=BATCH, callbacks=[timer]
    )
    return timer.seconds / STEPS


def main() -> None:
    torch.set_num_threads(1)
    task = gs.data.load("digits", seed=0)
    bare, ours = [], []
    for _ in range(REPEATS):  # interleaved, so drift in machine load hits both alike
        bare.append(bare_loop(task))
        ours.append(gradsight_fit(task))
    bare_s, ours_s = statistics.median(bare), statistics.median(ours)
    print(
        json.dumps(
            {
                "benchmark": "fit_overhead",
                "model": "mlp 64-128-128-128-10 relu, adam, batch 64, digits",
                "steps": STEPS,
                "repeats": REPEATS,
                "bare_ms_per_step": round(bare_s * 1e3, 4),
                "fit_ms_per_step": round(ours_s * 1e3, 4),
                "ratio": round(ours_s / bare_s, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
