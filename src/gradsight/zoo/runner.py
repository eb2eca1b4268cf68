"""Run zoo scenarios under `gs.watch`, diagnose them, and score the diagnosis.

A run trains the scenario's model with its own loop, watched with gradsight's defaults
(`gs.watch(model, optimizer)`; `watch.step()` after a hand-written update), logs the loss
every step, then calls `gs.diagnose(watch.history)`. The verdict:

- pathological scenario: right when an expected kind is among the warning/critical
  findings (findings come most severe first, so the first finding counts when it is one;
  an "info" finding names nothing);
- healthy scenario: right when there is no warning or critical finding (info is fine).

`run_zoo` adds recall (pathological runs rightly named / pathological runs), the false-alarm
rate (healthy runs with a warning / healthy runs) and precision over warnings (warning and
critical findings that name an expected kind / all of them).
"""

from __future__ import annotations

import importlib
import math
import time
import traceback
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gradsight.zoo.base import Setup
from gradsight.zoo.scenarios import Scenario, select

ALARMS = ("warning", "critical")


@dataclass
class ZooResult:
    """The outcome of one scenario.

    Attributes:
        id: Scenario id.
        family: Model family.
        expected: Acceptable kinds (sorted); empty for a healthy scenario.
        findings: (kind, severity) of every finding, in diagnose's order.
        right: The verdict (see the module docstring).
        steps: Weight updates run.
        loss_start: Mean loss over the first 10% of steps (finite values).
        loss_end: Mean loss over the last 10% of steps (finite values; NaN if none).
        loss_max: Largest finite loss.
        nonfinite_losses: Steps whose loss was NaN or infinite.
        wall_s: Whole run: build, training, diagnosis and probe.
        train_s: The watched training loop alone.
        probe: The family's direct measurements after training.
        error: The traceback's last line when something raised (then `right` is False).
        warnings: Distinct warning messages raised during the run.
        overhead: Bare vs watched seconds per step, when asked for.
    """

    id: str
    family: str
    expected: tuple[str, ...]
    findings: list[tuple[str, str]] = field(default_factory=list)
    right: bool = False
    steps: int = 0
    loss_start: float = math.nan
    loss_end: float = math.nan
    loss_max: float = math.nan
    nonfinite_losses: int = 0
    wall_s: float = 0.0
    train_s: float = 0.0
    probe: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    overhead: dict[str, Any] | None = None

    @property
    def healthy(self) -> bool:
        """Whether the scenario is healthy."""
        return not self.expected

    @property
    def alarms(self) -> list[str]:
        """Kinds of the warning and critical findings, in order."""
        return [kind for kind, severity in self.findings if severity in ALARMS]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite numbers become None)."""
        return _json_ready({**asdict(self), "healthy": self.healthy})


def judge(expected: Iterable[str], findings: list[tuple[str, str]]) -> bool:
    """The verdict on a run's findings; see the module docstring."""
    expected = set(expected)
    alarms = {kind for kind, severity in findings if severity in ALARMS}
    if not expected:
        return not alarms
    return bool(alarms & expected)


def family_module(family: str):
    """The module that builds a family's models (`gradsight.zoo.<family>`)."""
    return importlib.import_module(f"gradsight.zoo.{family}")


def run_scenario(
    scenario: Scenario,
    steps: int | None = None,
    quick: bool = False,
    seed: int = 0,
    run_dir: str | Path | None = None,
    overhead: bool = False,
) -> ZooResult:
    """Train one scenario under `gs.watch`, diagnose it and judge the diagnosis.

    Errors (in the model, the watch or the diagnosis) are caught and reported in the result.

    Args:
        scenario: What to run.
        steps: Weight updates; default `scenario.steps`, or `quick_steps` with quick=True.
        quick: Use the scenario's short run.
        seed: Seeds data, initialisation and batches.
        run_dir: Passed to `gs.watch` (run.json and metrics parts).
        overhead: Also train a fresh copy without gradsight and time both loops per step.
    """
    import gradsight as gs

    steps = steps or (scenario.quick_steps if quick else scenario.steps)
    result = ZooResult(scenario.id, scenario.family, tuple(sorted(scenario.expected)))
    started = time.perf_counter()
    losses: list[torch.Tensor] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            setup = family_module(scenario.family).build(seed, **scenario.settings)
            history, result.train_s = _watched_run(gs, setup, steps, run_dir, losses)
            _record_losses(result, losses)
            result.findings = [(f.kind, f.severity) for f in gs.diagnose(history)]
            result.right = judge(scenario.expected, result.findings)
            result.probe = setup.probe()
            if overhead:
                result.overhead = _overhead(scenario, seed, steps, result.train_s, losses)
        except Exception as error:  # a crash is a result of the zoo, not the end of it
            _record_losses(result, losses)
            result.error = traceback.format_exception_only(error)[-1].strip()
            result.right = False
    result.warnings = list(dict.fromkeys(str(w.message).splitlines()[0] for w in caught))
    result.wall_s = time.perf_counter() - started
    return result


def _watched_run(gs, setup: Setup, steps: int, run_dir, losses: list) -> tuple[Any, float]:
    """Train `setup` under gs.watch, appending each step's loss to `losses`.

    Returns:
        The watch's History and the seconds the loop took.
    """
    watch = gs.watch(setup.model, setup.optimizer, run_dir=run_dir)

    def after_step(loss: torch.Tensor) -> None:
        if setup.optimizer is None:
            watch.step()  # the loop updated the weights itself
        watch.log(loss=loss)
        losses.append(loss)

    started = time.perf_counter()
    try:
        setup.train(steps, after_step)
    finally:
        history = watch.close()
    return history, time.perf_counter() - started


def _bare_run(setup: Setup, steps: int) -> tuple[list[torch.Tensor], float]:
    losses: list[torch.Tensor] = []
    started = time.perf_counter()
    setup.train(steps, losses.append)
    return losses, time.perf_counter() - started


def _overhead(
    scenario: Scenario, seed: int, steps: int, watched_s: float, watched: list[torch.Tensor]
) -> dict[str, Any]:
    """Seconds per step of the same run without gradsight, and whether the losses match
    bit for bit (gradsight promises not to change training)."""
    setup = family_module(scenario.family).build(seed, **scenario.settings)
    bare, bare_s = _bare_run(setup, steps)
    same = len(bare) == len(watched) and all(
        torch.equal(a, b) or bool(a.isnan() & b.isnan()) for a, b in zip(bare, watched, strict=True)
    )
    return {
        "bare_step_ms": 1e3 * bare_s / max(steps, 1),
        "watched_step_ms": 1e3 * watched_s / max(steps, 1),
        "ratio": watched_s / bare_s if bare_s > 0 else math.nan,
        "identical_losses": same,
    }


def _record_losses(result: ZooResult, losses: list[torch.Tensor]) -> None:
    values = np.asarray([float(loss) for loss in losses], dtype=np.float64)
    finite = np.isfinite(values)
    result.steps = len(values)
    result.nonfinite_losses = int((~finite).sum())
    if not len(values):
        return
    window = max(1, len(values) // 10)
    head, tail = values[:window], values[-window:]
    result.loss_start, result.loss_end = _finite_mean(head), _finite_mean(tail)
    result.loss_max = float(values[finite].max()) if finite.any() else math.nan


def _finite_mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan


@dataclass
class ZooReport:
    """Results of many scenarios and their scores."""

    results: list[ZooResult]
    wall_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Counts, recall, false-alarm rate and precision over warnings."""
        sick = [r for r in self.results if not r.healthy]
        healthy = [r for r in self.results if r.healthy]
        named = sum(r.right for r in sick)
        false_alarms = sum(bool(r.alarms) for r in healthy)
        alarms = [(r, kind) for r in self.results for kind in r.alarms]
        correct = sum(kind in r.expected for r, kind in alarms)
        return _json_ready(
            {
                "scenarios": len(self.results),
                "pathological": len(sick),
                "healthy": len(healthy),
                "right": sum(r.right for r in self.results),
                "recall": named / len(sick) if sick else math.nan,
                "false_alarm_rate": false_alarms / len(healthy) if healthy else math.nan,
                "precision": correct / len(alarms) if alarms else math.nan,
                "warnings": len(alarms),
                "errors": sum(r.error is not None for r in self.results),
                "wall_s": self.wall_s,
            }
        )

    def markdown(self) -> str:
        """The table: scenario | expected | found | right/wrong, then loss and time."""
        lines = [
            "| scenario | expected | found | verdict | loss start → end | s |",
            "|---|---|---|---|---|---|",
        ]
        for r in self.results:
            expected = ", ".join(r.expected) or "healthy"
            found = ", ".join(f"{k} ({s})" for k, s in r.findings) or "—"
            if r.error:
                found = f"error: {r.error}"
            verdict = "right" if r.right else "**wrong**"
            loss = f"{r.loss_start:.3g} → {r.loss_end:.3g}"
            lines.append(f"| {r.id} | {expected} | {found} | {verdict} | {loss} | {r.wall_s:.1f} |")
        s = self.summary()
        lines += [
            "",
            f"{s['right']}/{s['scenarios']} right; recall {_pct(s['recall'])} "
            f"({s['pathological']} pathological), false alarms {_pct(s['false_alarm_rate'])} "
            f"({s['healthy']} healthy), precision over warnings {_pct(s['precision'])} "
            f"({s['warnings']} warnings); {s['wall_s']:.0f} s.",
        ]
        return "\n".join(lines) + "\n"


def run_zoo(
    ids: str | list[str] | None = None,
    quick: bool = False,
    seed: int = 0,
    overhead: bool = False,
    on_result: Callable[[ZooResult], None] | None = None,
) -> ZooReport:
    """Run many scenarios, one after the other.

    Args:
        ids: Ids or glob patterns (see `scenarios.select`); None runs the whole zoo.
        quick: Short runs.
        seed: Seed of every run.
        overhead: Time bare vs watched steps too (trains every scenario twice).
        on_result: Called with each result as it arrives (progress, streaming output).
    """
    started = time.perf_counter()
    results = []
    for scenario in select(ids):
        result = run_scenario(scenario, quick=quick, seed=seed, overhead=overhead)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return ZooReport(results, time.perf_counter() - started)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _json_ready(value: Any) -> Any:
    """Non-finite floats -> None, tuples -> lists, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return value
