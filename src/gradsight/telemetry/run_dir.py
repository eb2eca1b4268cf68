"""The run directory: `run.json` (config, seed, versions, timings, status) and metric parts.

```
runs/NAME/
  run.json                      written at start, rewritten when the status changes
  metrics/part-000001.parquet   appended while training (see History.flush)
  figures/ findings.json report.html   written by later stages
```

The names are those of `gradsight.run_files`.
"""

from __future__ import annotations

import errno
import json
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import torch

from gradsight._version import __version__
from gradsight.errors import InputError
from gradsight.files import write_atomic
from gradsight.run_files import FIGURES, METRICS, RUN_JSON
from gradsight.telemetry.history import PART_GLOB

Status = Literal["running", "finished", "failed", "interrupted"]
# Keys of run.json that hold an object when present (the report reads them as mappings).
OPTIONAL_OBJECTS = ("versions", "metrics", "meta")
# A failed run's error, as stored in run.json, is cut to this length (a full disk leaves only
# the blocks run.json already holds for the record).
MAX_ERROR_CHARS = 500


def versions() -> dict[str, str]:
    """Versions of what produced the run."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gradsight": __version__,
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_dir(root: str | Path, name: str) -> Path:
    """`root/<name>-<YYYYmmdd-HHMMSS>`, with `-2`, `-3`, ... added if a run is already there."""
    base = Path(root) / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    path, number = base, 1
    while path.exists():
        number += 1
        path = base.with_name(f"{base.name}-{number}")
    return path


class RunDir:
    """One run's folder.

    Args:
        path: The folder; created if missing. It must not already hold a run (a `run.json`)
            nor an old run's metric parts without one: mixing two runs' parts would corrupt both.
        config: Everything needed to repeat the run (JSON-serialisable; other values are
            stored as their `repr`).
        seed: The run's seed.
    """

    def __init__(self, path: str | Path, config: dict[str, Any], seed: int | None = None) -> None:
        self.path = Path(path)
        if (self.path / RUN_JSON).exists():
            raise FileExistsError(f"{self.path} already holds a run (run.json); choose another")
        parts = list((self.path / METRICS).glob(PART_GLOB))
        if parts:
            raise FileExistsError(
                f"{self.path} holds {len(parts)} metric parts but no run.json; "
                "choose another run directory"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self.metrics_dir = self.path / METRICS
        self.figures_dir = self.path / FIGURES
        self._started = time.perf_counter()
        self.info: dict[str, Any] = {
            "status": "running",
            "config": config,
            "seed": seed,
            "versions": versions(),
            "start_time": _now(),
            "end_time": None,
            "duration_s": None,
        }
        self._write()

    def update(self, **fields: Any) -> None:
        """Merge `fields` into run.json and rewrite it."""
        self.info.update(fields)
        self._write()

    def finish(self, status: Status, **fields: Any) -> None:
        """Record the final status, the end time and the duration."""
        self.update(
            status=status,
            end_time=_now(),
            duration_s=round(time.perf_counter() - self._started, 3),
            **fields,
        )

    @contextmanager
    def running(self) -> Iterator[RunDir]:
        """Marks the run failed on an exception and interrupted on Ctrl-C, then re-raises.

        The caller marks success itself with `finish("finished", ...)`. When even that record
        cannot be written (a disk so full that run.json cannot be rewritten in place), stderr
        says so and the original exception propagates.
        """
        try:
            yield self
        except KeyboardInterrupt:
            self._record_end("interrupted")
            raise
        except BaseException as error:
            message = f"{type(error).__name__}: {error}"
            self._record_end("failed", error=message[:MAX_ERROR_CHARS])
            raise

    def _record_end(self, status: Status, **fields: Any) -> None:
        try:
            self.finish(status, **fields)
        except OSError as error:
            print(
                f"gradsight: could not mark {self.path} {status} ({error}); its run.json keeps "
                f"the status {self._status_on_disk()!r}",
                file=sys.stderr,
            )

    def _write(self) -> None:
        """Rewrite run.json whole (temporary file, rename), so it is never half-written.

        On a full disk the temporary file cannot be written; run.json is then overwritten in
        place, in the blocks it already holds, so that the run's end is still recorded.
        """
        payload = (json.dumps(self.info, indent=2, default=repr) + "\n").encode()
        file = self.path / RUN_JSON
        try:
            write_atomic(file, payload)
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT) or not file.is_file():
                raise
            with open(file, "r+b") as handle:
                handle.write(payload)
                handle.truncate()

    def _status_on_disk(self) -> str | None:
        try:
            return read_run(self.path)["status"]
        except (OSError, ValueError):
            return None


def read_run(path: str | Path) -> dict[str, Any]:
    """The contents of a run directory's run.json.

    Raises:
        FileNotFoundError: There is no run.json.
        InputError: run.json is not JSON, or not an object with a string "status" and an
            object (or null) "config", "versions", "metrics" and "meta"; the message names
            the file and the problem.
    """
    file = Path(path) / RUN_JSON
    if not file.is_file():
        raise FileNotFoundError(f"{path} is not a run directory (no run.json)")
    try:
        info = json.loads(file.read_text())
    except ValueError as error:  # invalid JSON or invalid UTF-8
        raise InputError(f"{file}: not valid JSON: {error}") from None
    if not isinstance(info, dict):
        raise InputError(f"{file}: expected a JSON object, got a {type(info).__name__}")
    missing = [key for key in ("status", "config") if key not in info]
    if missing:
        raise InputError(f"{file}: missing key(s) {', '.join(missing)}")
    if not isinstance(info["status"], str):
        raise InputError(f"{file}: status must be a string, got {info['status']!r}")
    for key in ("config", *OPTIONAL_OBJECTS):
        if not isinstance(info.get(key), dict | None):
            raise InputError(f"{file}: {key} must be an object, got {type(info[key]).__name__}")
    return info
