"""`gradsight train` killed at random moments leaves a run directory that can be read.

Real training processes are stopped by SIGKILL, SIGTERM and SIGINT at moments drawn from a
seeded random generator: during start-up (before the run directory exists, while the model is
built) and after a random number of metric parts. Whatever the moment, the exit status, the run
directory (run.json, the metric parts, no temporary files) and `gradsight diagnose` must agree.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradsight.cli import app
from gradsight.telemetry import History, read_run
from gradsight.telemetry.history import PART_GLOB
from gradsight.train.fit import LOG_BLOCK

GRADSIGHT = str(Path(sys.executable).with_name("gradsight"))
SEED = 1729
KILLS_PER_SIGNAL = 4
# Of these, kills after some metric parts: each costs a whole start (about 4 s of CPU), where
# a kill during start-up costs what the process ran until then.
AFTER_PARTS_PER_SIGNAL = 1
SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)
# Processes alive at once: where there is more than one core, their starts (seconds of
# imports) overlap.
CONCURRENT = 3
# Start-up delays are drawn up to about the time `gradsight train` takes to reach its first
# step, so that they land in the interpreter's start, the imports, the task or the model build
# (or, on a quick machine, the first parts).
STARTUP_S = 3.0
MAX_PARTS = 6
# Waits: for a planned part to appear (a loaded machine starts slowly), and for the exit once
# the signal is sent (a clean stop takes well under a second).
PART_WAIT_S = 90
EXIT_WAIT_S = 30
# `gradsight train` writes a metrics part every LOG_BLOCK steps; a config cannot change it.
FLUSH_EVERY = LOG_BLOCK
EXPECTED_STATUS = {
    signal.SIGKILL: "running",  # nobody could mark it
    signal.SIGTERM: "interrupted",
    signal.SIGINT: "interrupted",
}

runner = CliRunner()


@dataclass(frozen=True)
class Kill:
    """One planned kill: `signum` sent `delay` seconds after the start (`after_parts` 0), or
    `delay` seconds after the `after_parts`-th metrics part appeared."""

    index: int
    signum: signal.Signals
    after_parts: int
    delay: float

    def __str__(self) -> str:
        when = f"{self.delay:.3f} s after " + (
            f"part {self.after_parts} appeared" if self.after_parts else "the start"
        )
        return f"seed {SEED}, kill {self.index}: {self.signum.name} {when}"


@dataclass
class Outcome:
    """What one killed process did."""

    kill: Kill
    run_dir: Path
    returncode: int | None = None
    stderr: str = ""
    sent_after_s: float | None = None  # from the start; None when the signal was never sent
    problem: str = ""
    # What Python printed of a SIGINT it went on after; `stderr` is what followed it.
    ignored_stderr: str = ""


def plan(seed: int) -> list[Kill]:
    """KILLS_PER_SIGNAL kills of each signal, AFTER_PARTS_PER_SIGNAL of them after some parts
    and the others during start-up, in a random order (so that slow and quick ones share the
    concurrent slots)."""
    rng = random.Random(seed)
    moments = []
    for signum in SIGNALS:
        for k in range(KILLS_PER_SIGNAL):
            if k >= AFTER_PARTS_PER_SIGNAL:
                moments.append((signum, 0, rng.uniform(0.0, STARTUP_S)))
            else:  # up to about one block's time after the part, so often within a flush
                moments.append((signum, rng.randint(1, MAX_PARTS), rng.uniform(0.0, 0.08)))
    rng.shuffle(moments)
    return [
        Kill(i, signum, parts, round(delay, 3)) for i, (signum, parts, delay) in enumerate(moments)
    ]


def part_count(run_dir: Path) -> int:
    """Metric parts in a run directory (0 while it does not exist)."""
    return len(list((run_dir / "metrics").glob(PART_GLOB)))


# CPython prints this, then the KeyboardInterrupt, when a SIGINT lands while it looks for the
# console script's importer (pymain_get_importer in Modules/main.c), and then runs the script
# as if nothing happened. A user would press Ctrl-C again: so does the test, once.
IGNORED_BY_PYTHON = "Failed checking if argv[0] is an import path entry"


def ignored_interrupt(stderr: str) -> str:
    """The head of stderr that ends where Python reported a SIGINT it went on after ('' if
    none): everything up to the KeyboardInterrupt line that follows IGNORED_BY_PYTHON."""
    start = stderr.find(IGNORED_BY_PYTHON)
    if start < 0:
        return ""
    end = stderr.find("\nKeyboardInterrupt", start)
    if end < 0:
        return ""
    line_end = stderr.find("\n", end + 1)
    return stderr[: len(stderr) if line_end < 0 else line_end + 1]


def wait_for_exit(child: subprocess.Popen, outcome: Outcome, stderr_file: Path) -> None:
    """Wait up to EXIT_WAIT_S for the exit; a SIGINT that Python ignored is sent again."""
    deadline = time.monotonic() + EXIT_WAIT_S
    while child.poll() is None:
        if time.monotonic() > deadline:
            outcome.problem = f"still running {EXIT_WAIT_S} s after the signal"
            return
        if outcome.kill.signum == signal.SIGINT and not outcome.ignored_stderr:
            outcome.ignored_stderr = ignored_interrupt(stderr_file.read_text())
            if outcome.ignored_stderr:
                child.send_signal(signal.SIGINT)
                deadline = time.monotonic() + EXIT_WAIT_S
        time.sleep(0.02)


def kill_training(kill: Kill, root: Path) -> Outcome:
    """Start `gradsight train`, send the signal at the planned moment, wait for the exit."""
    outcome = Outcome(kill, root / f"run-{kill.index:02d}-{kill.signum.name}")
    command = [GRADSIGHT, "train", "digits_relu_he_adam", "--run-dir", str(outcome.run_dir)]
    command += ["--set", "train.steps=1000000"]  # runs until stopped
    stderr_file = root / f"stderr-{kill.index:02d}.txt"
    started = time.monotonic()
    with stderr_file.open("w") as stderr:  # a file, not a pipe: read while the child runs
        child = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=stderr,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
    try:
        if kill.after_parts:
            deadline = started + PART_WAIT_S
            while part_count(outcome.run_dir) < kill.after_parts:
                if child.poll() is not None:
                    outcome.problem = "exited before the signal"
                    break
                if time.monotonic() > deadline:
                    outcome.problem = f"no part {kill.after_parts} within {PART_WAIT_S} s"
                    break
                time.sleep(0.02)
        if not outcome.problem:
            time.sleep(kill.delay)
            if child.poll() is None:
                child.send_signal(kill.signum)
                outcome.sent_after_s = round(time.monotonic() - started, 3)
                wait_for_exit(child, outcome, stderr_file)
            else:
                outcome.problem = "exited before the signal"
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    outcome.returncode = child.returncode
    outcome.stderr = stderr_file.read_text()[len(outcome.ignored_stderr) :]
    return outcome


# Python's traceback frame of the console script's `main()`: present once gradsight's command
# line runs, and hence handles Ctrl-C itself.
MAIN_FRAME = re.compile(r'[/\\]gradsight[/\\][^"]*\.py", line \d+, in main$', re.MULTILINE)


def shown(stderr: str, lines: int = 12) -> str:
    """stderr for an assertion message: its first and last lines when it is long (a
    RecursionError's traceback runs to a thousand)."""
    text = stderr.strip().splitlines()
    if len(text) > 2 * lines:
        text = [*text[:lines], f"[{len(text) - 2 * lines} lines]", *text[-lines:]]
    return "stderr:\n" + "\n".join(text)


def check_exit(outcome: Outcome, started_training: bool) -> None:
    """The exit status and stderr of a process, given whether it had written its run.json."""
    kill, code, stderr = outcome.kill, outcome.returncode, outcome.stderr
    if kill.signum == signal.SIGKILL:
        assert code == -signal.SIGKILL, f"exit {code}, {shown(stderr)}"
        return
    if started_training or code == 130:
        # run.json is written inside the training's signal handling: the stop must be clean.
        assert code == 130, f"exit {code} (130 expected), {shown(stderr)}"
        assert "Traceback" not in stderr, shown(stderr)
        # Before the training, the command line may end it without a word.
        assert not started_training or "interrupted" in stderr, shown(stderr)
    elif kill.signum == signal.SIGTERM:
        # SIGTERM keeps its default action (the process ends at once, nothing printed) until
        # `train` installs its handler, just before the training starts.
        assert code == -signal.SIGTERM, f"exit {code} (130 or -15 expected), {shown(stderr)}"
        assert not stderr.strip(), shown(stderr)
    else:
        # SIGINT arriving while the interpreter starts and imports the command line, before
        # any gradsight code runs, gets Python's own handling: the process ends by the signal
        # (-2), with a KeyboardInterrupt traceback (status 1), or, still initialising, with a
        # fatal error (-6); or Python reports it and goes on (IGNORED_BY_PYTHON). Once the
        # command line runs (its `main` frame in a traceback), Ctrl-C must end it cleanly:
        # exit 130, no traceback.
        assert not MAIN_FRAME.search(stderr), f"exit {code} (130 expected), {shown(stderr)}"
        assert code != 0, shown(stderr)
        assert not stderr.strip() or "KeyboardInterrupt" in stderr, shown(stderr)


def unlike_a_range(steps: list[int]) -> str:
    """How logged steps differ from 0, 1, ..., N-1."""
    missing = sorted(set(range(max(steps) + 1)) - set(steps))
    repeated = len(steps) - len(set(steps))
    return f"{len(steps)} steps up to {max(steps)}: missing {missing[:10]}, {repeated} repeated"


def check_run_dir(outcome: Outcome) -> int | None:
    """The run directory a killed process left; returns the steps it holds (None: no parts)."""
    kill, run_dir = outcome.kill, outcome.run_dir
    if kill.signum != signal.SIGKILL:
        assert not list(run_dir.rglob("*.tmp")), sorted(map(str, run_dir.rglob("*.tmp")))
    if not (run_dir / "run.json").exists():
        # Stopped during start-up, or between creating the folder and writing run.json.
        assert part_count(run_dir) == 0, f"metric parts without a run.json in {run_dir}"
        return None
    status = read_run(run_dir)["status"]
    assert status == EXPECTED_STATUS[kill.signum], f"run.json status {status!r}"
    try:
        history = History.load(run_dir)
    except FileNotFoundError:
        assert not kill.after_parts, f"no parts, though part {kill.after_parts} was seen"
        return None
    steps = history.series("grad/norm_global").index.tolist()
    assert steps == list(range(len(steps))), f"grad/norm_global: {unlike_a_range(steps)}"
    held = len(steps)
    assert held >= kill.after_parts * FLUSH_EVERY, f"{held} steps after {kill.after_parts} parts"
    every = sorted(set(history.frame()["step"].tolist()))
    assert every == list(range(len(every))), f"all metrics: {unlike_a_range(every)}"
    if kill.signum == signal.SIGKILL:
        assert held % FLUSH_EVERY == 0, f"{held} steps flushed, not whole parts of {FLUSH_EVERY}"
        assert len(every) == held, f"{len(every)} steps logged, {held} with gradient norms"
    else:  # the step in progress may have logged some values, but not its gradient norm
        assert held <= len(every) <= held + 1, f"{len(every)} steps, {held} with gradient norms"
    return len(every)


def check_diagnose(outcome: Outcome, steps: int | None) -> None:
    """`gradsight diagnose` on what the process left."""
    result = runner.invoke(app, ["diagnose", str(outcome.run_dir)])
    said = f"diagnose exit {result.exit_code} ({result.exception!r}):\n{result.output}"
    if steps is None:
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2, said
        assert len(lines) == 1 and lines[0].startswith("error: "), said
        return
    assert result.exit_code == 0, said
    status = EXPECTED_STATUS[outcome.kill.signum]
    note = f"did not finish (status {status}); it holds {steps} steps (0 to {steps - 1})"
    assert note in result.stderr, said


def check(outcome: Outcome) -> None:
    """Every check on one killed process."""
    assert not outcome.problem, f"{outcome.problem}; {shown(outcome.stderr)}"
    # A SIGINT Python went on after landed before any gradsight code ran.
    assert not MAIN_FRAME.search(outcome.ignored_stderr), shown(outcome.ignored_stderr)
    started_training = (outcome.run_dir / "run.json").exists()
    check_exit(outcome, started_training)
    steps = check_run_dir(outcome)
    check_diagnose(outcome, steps)


@pytest.mark.slow
def test_training_killed_at_random_moments_leaves_a_readable_run(tmp_path):
    kills = plan(SEED)
    with ThreadPoolExecutor(CONCURRENT) as pool:
        outcomes = list(pool.map(lambda kill: kill_training(kill, tmp_path), kills))
    failures = []
    for outcome in outcomes:
        try:
            check(outcome)
        except AssertionError as error:
            sent = f"sent {outcome.sent_after_s} s after the start"
            if outcome.ignored_stderr:
                sent += ", ignored by Python and sent again"
            failures.append(f"{outcome.kill} ({sent}): {error}")
    assert not failures, "\n\n".join(failures)


# A stand-in for the interpreter that goes on after a SIGINT: it reports the first as CPython
# does, then exits 130 on the second.
GOES_ON_AFTER_ONE_SIGINT = f"""
import signal, sys, time
def first(signum, frame):
    sys.stderr.write({IGNORED_BY_PYTHON!r} + "\\nTraceback (most recent call last):\\n")
    sys.stderr.write("KeyboardInterrupt\\n")
    sys.stderr.flush()
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
signal.signal(signal.SIGINT, first)
print("ready", flush=True)
time.sleep(60)
"""


def test_a_sigint_python_went_on_after_is_sent_again(tmp_path):
    stderr_file = tmp_path / "stderr.txt"
    with stderr_file.open("w") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-c", GOES_ON_AFTER_ONE_SIGINT],
            stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
    try:
        assert child.stdout.readline() == "ready\n"
        child.send_signal(signal.SIGINT)
        outcome = Outcome(Kill(0, signal.SIGINT, 0, 0.0), tmp_path)
        wait_for_exit(child, outcome, stderr_file)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert not outcome.problem
    assert child.returncode == 130
    assert outcome.ignored_stderr.startswith(IGNORED_BY_PYTHON)
    assert outcome.ignored_stderr.endswith("KeyboardInterrupt\n")
