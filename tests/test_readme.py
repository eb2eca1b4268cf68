"""README.md runs as written.

- Every ```python block runs, in the README's order, in one namespace (a later block may use
  what an earlier one made, as a reader following along would), in one fresh Python process
  whose working folder is an empty temporary one. A block opened as ```python no-run is shown,
  not run (for code that needs what a reader has and the test has not).
- The `gradsight ...` lines of the ```bash blocks run as written, in order, in one empty
  temporary folder (as after `pip install gradsight`: no repository around), and must exit
  with status 0, except those `NOT_RUN` matches, each with its reason: a new example is
  either run or explained.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradsight.cli import app

README = Path(__file__).parents[1] / "README.md"
SRC = Path(__file__).parents[1] / "src"
FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)

# The command lines not run (regular expressions matching their start), each with its reason.
NOT_RUN = {
    r"gradsight demo\b": "trains two examples for 1000 steps and runs the doctor (90 s here)",
    r"gradsight (diagnose|report) runs/demo/": "reads the runs of gradsight demo (not run)",
    r"gradsight playground\b": "draws a 40-frame GIF (20 s here)",
    r"gradsight doctor --model mypkg\.": "mypkg is the reader's own package",
    r"gradsight doctor \S*digits_sigmoid_deep": "several hundred training runs (minutes)",
    r"gradsight lab run all\b": "needs a Ray cluster (--address auto) and runs for minutes",
    r"gradsight lab run vanishing-depth\b": "an experiment of several training runs (25 s here)",
    r"gradsight run ": "runs the reader's own training script",
}

# Runs each block in order in one namespace; reports each block's line, status and time.
DRIVER = r"""
import json, sys, time, traceback
blocks = json.load(sys.stdin)
namespace = {"__name__": "__main__"}
for line, code in blocks:
    start = time.perf_counter()
    try:
        exec(compile(code, f"README.md, block at line {line}", "exec"), namespace)
        error = None
    except BaseException:
        error = traceback.format_exc(limit=-3)
    print(json.dumps({"line": line, "seconds": time.perf_counter() - start, "error": error}))
    sys.stdout.flush()
"""


def fenced_blocks(text: str, language: str) -> list[tuple[int, str, str]]:
    """`(line of the opening fence, info after the language, code)` of each block."""
    return [
        (text.count("\n", 0, match.start()) + 1, match.group(2).strip(), match.group(3))
        for match in FENCE.finditer(text)
        if match.group(1) == language
    ]


def python_blocks(text: str) -> list[tuple[int, str]]:
    """The ```python blocks to run: `(line, code)`, without those tagged no-run."""
    return [(line, code) for line, info, code in fenced_blocks(text, "python") if info != "no-run"]


def command_lines(text: str) -> list[str]:
    """The `gradsight ...` lines of the ```bash blocks, without their comments."""
    lines = []
    for _, _, code in fenced_blocks(text, "bash"):
        for line in code.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "gradsight":
                lines.append(shlex.join(words))
    return lines


def run_python_blocks(text: str, cwd: Path) -> list[dict]:
    """Each block's `{"line", "seconds", "error"}`, run as the module docstring says."""
    import json

    # One torch thread: on a shared 2-core machine two threads wait on each other (5x slower).
    env = {**os.environ, "PYTHONPATH": str(SRC), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER],
        input=json.dumps(python_blocks(text)),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_readme_python_blocks_run_as_written(tmp_path):
    results = run_python_blocks(README.read_text(), tmp_path)
    assert len(results) == len(python_blocks(README.read_text()))
    failed = [f"block at line {r['line']}:\n{r['error']}" for r in results if r["error"]]
    assert not failed, "\n".join(failed)


def not_run(line: str) -> str | None:
    """Why a command line is not run, or None."""
    return next((why for start, why in NOT_RUN.items() if re.match(start, line)), None)


def run_commands(text: str) -> list[tuple[str, int, str]]:
    """`(line, exit status, output)` of each command line run, in this process, in order."""
    runner = CliRunner()
    results = []
    for line in command_lines(text):
        if not_run(line) is None:
            result = runner.invoke(app, shlex.split(line)[1:])
            results.append((line, result.exit_code, result.output))
    return results


@pytest.mark.slow
def test_readme_commands_run_as_written(tmp_path, monkeypatch, one_thread):
    monkeypatch.chdir(tmp_path)
    results = run_commands(README.read_text())
    assert results, "no gradsight command of README.md is run"
    failed = [f"{line} (exit {code}):\n{output[-2000:]}" for line, code, output in results if code]
    assert not failed, "\n".join(failed)
