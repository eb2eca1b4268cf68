"""`gradsight run train.py ARGS`: the script's output untouched on stdout; gradsight's lines,
the script's traceback (as Python prints it) and the findings of each watched model on stderr.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from gradsight.diagnosis.finding_text import print_findings
from gradsight.integrations.script import ScriptRun, run_script


def report_run(console: Console, result: ScriptRun) -> None:
    """The script's error, then each watched model's run and findings."""
    if result.error:
        console.file.write(result.error if result.error.endswith("\n") else result.error + "\n")
        console.file.flush()
    if not result.runs:
        console.print("gradsight: no optimizer stepped; nothing was watched", highlight=False)
    for watched, findings in zip(result.runs, result.findings, strict=True):
        model = type(watched.model).__name__ if watched.found else "parameters"
        steps = watched.watch.current_step + 1 if len(watched.history) else 0
        where = f" -> {watched.run.path}" if watched.run is not None else ""
        console.print(
            f"[bold]gradsight[/]: {escape(model)} with {type(watched.optimizer).__name__}, "
            f"{steps} steps, {result.status}{escape(where)}",
            highlight=False,
        )
        print_findings(console, findings)
    for line in result.skipped:
        console.print(f"gradsight: not watched: {escape(line)}", highlight=False)


def run_command(
    script: Path,
    args: Sequence[str],
    *,
    run_dir: Path | None = None,
    every: int = 1,
    activations_every: int = 10,
) -> int:
    """Run and report; returns the script's exit status.

    Raises:
        FileNotFoundError, FileExistsError: No such script; `run_dir` already holds a run.
    """
    console = Console(stderr=True)
    result = run_script(
        script,
        list(args),
        run_dir=run_dir,
        notify=lambda line: console.print(f"gradsight: {escape(line)}", highlight=False),
        every=every,
        activations_every=activations_every,
    )
    report_run(console, result)
    return result.exit_code
