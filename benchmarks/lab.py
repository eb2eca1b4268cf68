"""Wall time of `gradsight lab run all --quick` (and with --full, of full mode): one JSON line.

    python benchmarks/lab.py            # quick mode, what the tests run
    python benchmarks/lab.py --full     # also full mode (the docs' figures; minutes)

Also times quick mode with torch's default thread count, to show what one thread buys, and
with the trials on 2 local processes (`Executor(workers=2)`, `lab run all --workers 2`),
against the serial executor. Full mode runs serially on one thread.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

from gradsight import executor as executor_module
from gradsight.executor import Executor
from gradsight.lab import LabConfig, runner
from gradsight.lab.registry import EXPERIMENTS

DEFAULT_THREADS = torch.get_num_threads()


def _time(quick: bool, threads: int | None, executor: Executor | None = None) -> dict:
    """One `run_all`; threads None gives the experiment and its jobs torch's default count."""
    saved = runner.LAB_THREADS, executor_module.JOB_THREADS
    runner.LAB_THREADS = threads
    executor_module.JOB_THREADS = threads or DEFAULT_THREADS  # this process's jobs only
    try:
        with tempfile.TemporaryDirectory() as out:
            config = LabConfig(quick=quick, out_dir=out, executor=executor or Executor())
            started = time.perf_counter()
            results = runner.run_all(config)
            total = time.perf_counter() - started
    finally:
        runner.LAB_THREADS, executor_module.JOB_THREADS = saved
    claims = [c for r in results.values() for c in r.claims]
    return {
        "wall_s": round(total, 2),
        "per_experiment_s": {k: round(r.elapsed_s, 2) for k, r in results.items()},
        "claims_held": sum(c.held for c in claims),
        "claims": len(claims),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also time full mode")
    args = parser.parse_args()
    line = {
        "benchmark": "lab",
        "experiments": len(EXPERIMENTS),
        "cpu_threads": torch.get_num_threads(),
        "quick": _time(True, runner.LAB_THREADS),
        "quick_default_threads": _time(True, None),
        "quick_workers_2": _time(True, runner.LAB_THREADS, Executor(workers=2)),
    }
    line["workers_2_speedup"] = round(
        line["quick"]["wall_s"] / line["quick_workers_2"]["wall_s"], 2
    )
    if args.full:
        line["full"] = _time(False, runner.LAB_THREADS)
    print(json.dumps(line))


if __name__ == "__main__":
    main()
