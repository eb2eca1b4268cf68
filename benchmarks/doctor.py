"""Wall time of `gs.doctor` per diagnosis scenario, serially and on local worker processes.

    python benchmarks/doctor.py                      # every scenario, then the digits model
    python benchmarks/doctor.py --scenarios sgd_lr_nan relu_he_adam --workers 2

Each scenario runs as a user would: its own training settings with the doctor's defaults
(3 seeds, remedies "auto"), once in this process and once on `Executor(workers=N)`. A first
line times starting the N worker processes (each imports torch and gradsight), which the
executor then keeps: a session pays it once, so the scenarios' lines are timed warm. One JSON
line per scenario: both wall times, the runs trained, the verdict, and whether the two
prescriptions are identical. A last line times a default doctor run on a digits-sized model
(a 10-layer sigmoid MLP, every setting the doctor's default); the target is under 3 min.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import pandas as pd
import torch

import gradsight as gs
from gradsight.doctor import Prescription, doctor
from gradsight.doctor.patients import patient
from gradsight.doctor.scenarios import SCENARIOS
from gradsight.executor import Executor

DIGITS_LIMIT_S = 180.0  # a default run on a digits-sized model within 3 minutes


def digits_model(seed: int) -> torch.nn.Module:
    """A digits-sized model with vanishing gradients (module-level: workers unpickle it)."""
    return gs.models.mlp(64, 10, depth=10, width=64, activation="sigmoid", seed=seed)


def _noop(item: int) -> int:
    return item


def _pool_start(workers: int) -> dict:
    started = time.perf_counter()
    Executor(workers=workers).map(_noop, range(workers))
    return {"benchmark": "doctor", "case": "pool_start", f"workers{workers}_s": _since(started)}


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 2)


def _timed(arguments: dict, executor: Executor | None) -> tuple[float, Prescription]:
    started = time.perf_counter()
    prescription = doctor(**arguments, executor=executor)
    return time.perf_counter() - started, prescription


def _same(a: Prescription, b: Prescription) -> bool:
    try:
        pd.testing.assert_frame_equal(a.trials, b.trials)
        pd.testing.assert_series_equal(a.baseline, b.baseline)
    except AssertionError:
        return False
    return a.best == b.best and a.curvature == b.curvature


def _line(name: str, arguments: dict, workers: int) -> dict:
    serial_s, serial = _timed(arguments, None)
    parallel_s, parallel = _timed(arguments, Executor(workers=workers))
    top = serial.trials.iloc[0] if len(serial.trials) else None
    return {
        "benchmark": "doctor",
        "case": name,
        "runs": len(serial.seeds) * (1 + len(serial.trials)),
        "serial_s": round(serial_s, 2),
        f"workers{workers}_s": round(parallel_s, 2),
        "speedup": round(serial_s / parallel_s, 2),
        "identical": _same(serial, parallel),
        "healthy": serial.healthy,
        "best": serial.best,
        "improvement": None if top is None else round(float(top["improvement"]), 4),
        "ci_low": None if top is None else round(float(top["ci_low"]), 4),
        "lambda_min": None if serial.curvature is None else round(serial.curvature.lambda_min, 4),
        "cpus": os.cpu_count(),
        "load_1min": round(os.getloadavg()[0], 2),  # the machine may be shared: read with care
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="*", default=list(SCENARIOS), help="names to run")
    parser.add_argument("--workers", type=int, default=2, help="local worker processes")
    parser.add_argument("--no-digits", action="store_true", help="skip the digits model")
    args = parser.parse_args()
    print(json.dumps(_pool_start(args.workers)), flush=True)
    for name in args.scenarios:
        print(json.dumps(_line(name, patient(name), args.workers)), flush=True)
    if not args.no_digits:
        digits = {"model_or_factory": digits_model, "task_or_loader": gs.data.load("digits")}
        line = _line("digits_sigmoid_mlp_defaults", digits, args.workers)
        slowest = max(line["serial_s"], line[f"workers{args.workers}_s"])
        line["within_3_min"] = slowest < DIGITS_LIMIT_S
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
