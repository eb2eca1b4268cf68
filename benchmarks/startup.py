"""Start-up time: `import gradsight` and `gradsight --help` against `import torch`.

Each command runs in a fresh interpreter, the commands interleaved round by round (so drift
in machine load hits all alike) after one warm-up round that fills the file cache; medians
of the wall times. `first use` also touches the names a training script reaches first
(`gs.fit`, `gs.watch`, `gs.diagnose`, `gs.models`, `gs.data`), which import torch.

Prints one JSON line: median seconds of each command, and each over `import torch`.
Run: `.venv/bin/python benchmarks/startup.py [--repeats 7]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PYTHON = sys.executable
# The console script installed beside this interpreter, as users run it; else `python -m`.
SCRIPT = Path(PYTHON).with_name("gradsight")
HELP = [str(SCRIPT), "--help"] if SCRIPT.is_file() else [PYTHON, "-m", "gradsight", "--help"]
COMMANDS = {
    "import_torch": [PYTHON, "-c", "import torch"],
    "import_gradsight": [PYTHON, "-c", "import gradsight"],
    "first_use": [
        PYTHON,
        "-c",
        "import gradsight as gs; gs.fit, gs.watch, gs.diagnose, gs.models, gs.data",
    ],
    "gradsight_help": HELP,
}


def wall_time(command: list[str]) -> float:
    """Seconds for `command` to run to its end (output discarded; a failure raises)."""
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=os.environ)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    for command in COMMANDS.values():  # warm-up: file cache and bytecode
        wall_time(command)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            times[name].append(wall_time(command))
    median = {name: statistics.median(values) for name, values in times.items()}
    torch_s = median["import_torch"]
    print(
        json.dumps(
            {
                "benchmark": "startup",
                "repeats": args.repeats,
                "cpus": os.cpu_count(),
                **{f"{name}_s": round(value, 3) for name, value in median.items()},
                **{
                    f"{name}_over_torch": round(value / torch_s, 3)
                    for name, value in median.items()
                    if name != "import_torch"
                },
            }
        )
    )


if __name__ == "__main__":
    main()
