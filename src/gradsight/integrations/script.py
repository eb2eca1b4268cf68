"""Run a user's unchanged training script under an `AutoWatch` (`gradsight run train.py ...`).

```python
from gradsight.integrations.script import run_script

result = run_script("train.py", ["--epochs", "2"], run_dir="runs/train")
result.exit_code, result.status      # 0, "finished"
result.runs[0].history               # what the watch of its model recorded
result.findings[0]                   # gs.diagnose of that run (also in run_dir/findings.json)
```

The script runs as `python train.py ARGS` runs it: `runpy.run_path` with `__name__ ==
"__main__"`, `sys.argv == [script, *ARGS]` and the script's folder first on `sys.path`
(restored afterwards). Every model whose optimizer steps is watched (see
`gradsight.integrations.auto_watch`). When the script ends, by returning, by `sys.exit`, by
an exception or by Ctrl-C, the watches are closed with the status "finished" (exit status
0), "failed" or "interrupted", each run is diagnosed, and the exit status is the one Python
would have given: SystemExit's code, 1 for an exception, 130 for KeyboardInterrupt.
"""

from __future__ import annotations

import runpy
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradsight.diagnosis import Finding, diagnose, save_findings
from gradsight.integrations.auto_watch import AutoWatch, Watched
from gradsight.run_files import FINDINGS_JSON, RUN_JSON
from gradsight.telemetry.run_dir import new_run_dir

# The shell's status for a process ended by SIGINT (128 + 2), as Python's own exit on Ctrl-C.
INTERRUPTED = 130


@dataclass
class ScriptRun:
    """How a watched script ended, and what was recorded.

    Attributes:
        script: The script.
        exit_code: The status `python script` would have exited with.
        status: "finished" (exit status 0), "failed" or "interrupted".
        runs: One per watched model, in the order their optimizers first stepped.
        findings: `gs.diagnose` of each run, same order (empty lists when not diagnosed).
        error: The script's traceback (from its own frames on) or SystemExit's message,
            for stderr; None when there is nothing to show.
        skipped: Optimizers not watched, and why.
    """

    script: Path
    exit_code: int
    status: str
    runs: list[Watched] = field(default_factory=list)
    findings: list[list[Finding]] = field(default_factory=list)
    error: str | None = None
    skipped: list[str] = field(default_factory=list)


def default_run_dir(script: str | Path, root: str | Path = "runs") -> Path:
    """`runs/<script stem>-<YYYYmmdd-HHMMSS>`."""
    return new_run_dir(root, Path(script).stem)


@contextmanager
def as_main(script: str | Path, args: Sequence[str]) -> Iterator[None]:
    """`sys.argv` and `sys.path` as `python script ARGS` sets them, restored on exit."""
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [str(script), *args]
    sys.path.insert(0, str(Path(script).resolve().parent))
    try:
        yield
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path


def _exit_code(exit: SystemExit) -> tuple[int, str | None]:
    """Python's exit status for `sys.exit(code)`, and the message it prints (a non-int code)."""
    if exit.code is None:
        return 0, None
    if isinstance(exit.code, int):
        return exit.code, None
    return 1, str(exit.code)


def _traceback_from(error: BaseException, script: str) -> str:
    """The traceback as Python prints it for the script, without the frames that ran it."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != script:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb or error.__traceback__))


def run_script(
    script: str | Path,
    args: Sequence[str] = (),
    *,
    run_dir: str | Path | None = None,
    notify: Callable[[str], None] | None = None,
    diagnose_runs: bool = True,
    **watch_options: Any,
) -> ScriptRun:
    """Run `script` with `args` as `python script ARGS` would, watching every model it trains.

    Args:
        script: The training script (a path to a Python file).
        args: Its command-line arguments.
        run_dir: Where the first watched model's run goes (default `default_run_dir`); later
            models in its subfolders.
        notify: Called with a line when a watch starts.
        diagnose_runs: Diagnose each run when the script ends and save its findings.json.
        **watch_options: Passed to `gs.watch` (every, updates_every, activations_every, ...).

    Returns:
        How the script ended and what was recorded (see `ScriptRun`).

    Raises:
        FileNotFoundError: The script does not exist.
        FileExistsError: `run_dir` already holds a run.
    """
    path = Path(script)
    if not path.is_file():
        raise FileNotFoundError(f"no such script: {script}")
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(path)
    if (run_dir / RUN_JSON).exists():
        raise FileExistsError(f"{run_dir} already holds a run (run.json); choose another")
    config = {"name": path.stem, "script": str(path), "args": list(args)}
    auto = AutoWatch(run_dir, config=config, notify=notify, **watch_options)
    exit_code, status, error = 0, "finished", None
    with as_main(path, args), auto:
        try:
            runpy.run_path(str(path), run_name="__main__")
        except SystemExit as exit:
            exit_code, error = _exit_code(exit)
            status = "finished" if exit_code == 0 else "failed"
        except KeyboardInterrupt as interrupt:
            exit_code, status = INTERRUPTED, "interrupted"
            error = _traceback_from(interrupt, str(path))
        except BaseException as failure:  # the script's own error: reported, as Python would
            exit_code, status = 1, "failed"
            error = _traceback_from(failure, str(path))
    runs = auto.close(status)
    findings: list[list[Finding]] = []
    for watched in runs:
        found = diagnose(watched.history) if diagnose_runs and len(watched.history) else []
        if diagnose_runs and watched.run is not None:
            save_findings(found, watched.run.path / FINDINGS_JSON)
        findings.append(found)
    return ScriptRun(path, exit_code, status, runs, findings, error, list(auto.skipped))
