"""`doctor`: baseline probe -> diagnose -> remedy trials -> `Prescription`.

Every trial trains with the same budget (steps, batch size) and the same seeds as the
baseline, so seed s of a remedy and seed s of the baseline see the same batches; the
improvement is measured per seed (paired) and summarised with a bootstrap interval.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from torch import nn

from gradsight.data.task import Task
from gradsight.diagnosis import Finding, diagnose
from gradsight.diagnosis._metrics import error_norms, median_ratio
from gradsight.lab.stats import bootstrap_ci, mean_spread
from gradsight.models.init import seeded
from gradsight.remedies import NotApplicable, Treatment, apply_remedies
from gradsight.train.fit import fit

ModelFactory = Callable[..., nn.Module]

# Remedies tried with remedies="auto": the first this many distinct applicable ones.
AUTO_REMEDIES = 5
# Severities whose findings propose remedies; "info" findings alone mean a healthy run.
TREATED_SEVERITIES = ("warning", "critical")
# What the probe records: every step's stats would cost more than the trials need.
WATCH = {"every": 10}


@dataclass
class Prescription:
    """What the doctor found and measured.

    Attributes:
        baseline: The baseline's row (same columns as `trials`).
        trials: One row per remedy (name "a+b" for a combination), best first: train_loss,
            test_<metric> (mean and std over seeds), flow_ratio (first/last layer gradient
            norm, median over steps), improvement (paired mean of the test metric's change,
            positive is better) with its bootstrap interval ci_low/ci_high, and `remaining`
            (finding kinds still diagnosed after the remedy).
        findings: The baseline's findings (first seed).
        best: The best remedy whose interval lies above zero, or None.
        changes: Remedy name -> what to change in the user's code, one line per remedy.
        skipped: Remedy name -> why it did not apply.
        metric: The task's metric ("accuracy" or "mse").
        settings: The baseline's training settings.
    """

    baseline: pd.Series
    trials: pd.DataFrame
    findings: list[Finding]
    best: str | None
    changes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    metric: str = "accuracy"
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self, table: bool = True) -> str:
        """What to change, in words and code, with the measured numbers (and, with `table`,
        the trials as text)."""
        metric = f"test_{self.metric}"
        base = self.baseline
        lines = [
            f"Baseline ({_describe(self.settings)}): {metric} {base[metric]:.4g} "
            f"± {base[metric + '_std']:.2g}, train loss {base['train_loss']:.4g}.",
        ]
        serious = [f for f in self.findings if f.severity in TREATED_SEVERITIES]
        if not serious:
            lines.append("No pathology found: no change needed.")
            return "\n".join(lines)
        lines.append("Findings: " + ", ".join(f"{f.kind} ({f.severity})" for f in serious) + ".")
        if self.best is None:
            lines.append("No remedy beat the baseline beyond its interval: no change proven.")
        else:
            row = self.trials.loc[self.trials["remedy"] == self.best].iloc[0]
            lines.append(
                f"Best remedy: {self.best}: {metric} {row[metric]:.4g} ± {row[metric + '_std']:.2g}"
                f" (improvement {row['improvement']:+.4g}, 95% interval "
                f"{row['ci_low']:+.4g} to {row['ci_high']:+.4g})."
            )
            lines.append("What to change:")
            lines += [f"  - {change}" for change in self.changes.get(self.best, ())]
        if table and len(self.trials):
            lines += ["", self.trials.to_string(index=False, float_format=lambda v: f"{v:.4g}")]
        if self.skipped:
            lines.append("")
            lines += [f"Not applicable: {name}: {why}" for name, why in self.skipped.items()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _describe(settings: dict[str, Any]) -> str:
    keys = ("optimizer", "lr", "momentum", "weight_decay", "clip_norm", "steps", "batch_size")
    return ", ".join(f"{k}={settings[k]}" for k in keys if settings.get(k) not in (None, 0, 0.0))


@contextmanager
def _threads(count: int | None):
    """torch's intra-op threads set to `count` for the block (1 is fastest for small models)."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _builder(model_or_factory: nn.Module | ModelFactory) -> Callable[[int], nn.Module]:
    """seed -> a fresh model: the factory called with `seed=` (or under that seed), or a deep
    copy of the given model's initial state (the same weights for every seed)."""
    if isinstance(model_or_factory, nn.Module):
        initial = copy.deepcopy(model_or_factory)
        return lambda seed: copy.deepcopy(initial)
    if not callable(model_or_factory):
        raise TypeError(
            f"model_or_factory must be an nn.Module or a callable, got {model_or_factory!r}"
        )
    try:
        takes_seed = "seed" in inspect.signature(model_or_factory).parameters
    except (TypeError, ValueError):
        takes_seed = False

    def build(seed: int) -> nn.Module:
        with seeded(seed):
            model = model_or_factory(seed=seed) if takes_seed else model_or_factory()
        if not isinstance(model, nn.Module):
            raise TypeError(f"the model factory returned {type(model).__name__}, not an nn.Module")
        return model

    return build


def flow_ratio(history) -> float:
    """First/last weight layer's back-propagated error norm, median over logged steps
    (nan when fewer than two layers were measured); ~1 is healthy, << 1 is vanishing."""
    try:
        norms, _, layers = error_norms(history)
    except (KeyError, ValueError):
        return math.nan
    if len(layers) < 2 or norms.empty:
        return math.nan
    median = median_ratio(norms, layers[0], layers[-1])
    return math.nan if median is None else median[0]


def candidates(findings: Sequence[Finding]) -> list[str]:
    """Distinct remedy names of the warning/critical findings, most severe finding first and
    each finding's remedies best first; not-applicable ones are filtered later."""
    names: list[str] = []
    for finding in findings:
        if finding.severity not in TREATED_SEVERITIES:
            continue
        names += [r.name for r in finding.remedies if r.name not in names]
    return names


@dataclass
class _Run:
    metrics: list[dict[str, Any]]
    flows: list[float]
    kinds: tuple[str, ...]
    findings: list[Finding]


def doctor(
    model_or_factory: nn.Module | ModelFactory,
    task: Task,
    *,
    optimizer: str = "sgd",
    lr: float | None = None,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    clip_norm: float | None = None,
    steps: int = 300,
    seeds: int | Sequence[int] = 3,
    remedies: str | Sequence[str] = "auto",
    batch_size: int | None = 64,
    max_remedies: int = AUTO_REMEDIES,
    combine: bool = True,
    progress: bool = False,
    num_threads: int | None = 1,
    device: str = "cpu",
) -> Prescription:
    """Diagnose a model's training, try the remedies, and say which one measurably helps.

    1. Baseline: train a fresh model per seed with `gs.fit` (watched) and `gs.diagnose` it.
    2. Candidates: with remedies="auto", the first `max_remedies` distinct applicable remedies
       of the warning/critical findings, plus (with `combine`) the top two together.
    3. Trials: each remedy applied to a fresh model per seed, trained with the same settings,
       steps, batch size and seeds.
    4. Ranking: improvement = mean over seeds of (trial - baseline) test metric (sign flipped
       for mse), paired by seed, with a 95% percentile bootstrap interval (Efron 1979); the
       best remedy is the largest improvement whose interval lies above zero.

    Args:
        model_or_factory: A factory `build(seed=...)` (or `build()`, called under the seed)
            giving a fresh model, or a model whose initial state is copied for every trial.
        task: The problem (`gs.data.load`).
        optimizer, lr, momentum, weight_decay, clip_norm: The baseline's training settings.
        steps: Optimizer steps of every run.
        seeds: How many seeds (0..n-1), or the seeds themselves.
        remedies: "auto", or remedy names; "a+b" is a combination.
        batch_size: Examples per step.
        max_remedies: Remedies tried with "auto" (not counting the combination).
        combine: Also try the top two auto remedies together.
        progress: Show a rich progress bar over the runs (on a terminal).
        num_threads: torch threads during the runs (restored afterwards); None keeps them.
        device: Where to train.

    Returns:
        A `Prescription`.
    """
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {seeds}")
        seeds = list(range(seeds))
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must not be empty")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    build = _builder(model_or_factory)
    settings = {
        "optimizer": optimizer,
        "lr": lr,
        "momentum": momentum,
        "weight_decay": weight_decay,
        "clip_norm": clip_norm,
    }
    budget = {"steps": steps, "batch_size": batch_size, "device": device}

    def run(make: Callable[[int], tuple[nn.Module, dict[str, Any], Task]]) -> _Run:
        metrics, flows, findings_per_seed = [], [], []
        for seed in seeds:
            model, trial_settings, trial_task = make(seed)
            result = fit(model, trial_task, **trial_settings, **budget, seed=seed, watch=WATCH)
            metrics.append(result.metrics)
            flows.append(flow_ratio(result.history))
            findings_per_seed.append(diagnose(result.history, task=trial_task))
            bar.advance()
        first = findings_per_seed[0]
        kinds = tuple(dict.fromkeys(f.kind for f in first if f.severity in TREATED_SEVERITIES))
        return _Run(metrics, flows, kinds, first)

    with _threads(num_threads), _Bar(progress) as bar:
        bar.add(len(seeds))
        baseline = run(lambda seed: (build(seed), settings, task))
        findings = baseline.findings
        if remedies == "auto":
            wanted = [(name,) for name in candidates(findings)]
        elif isinstance(remedies, str):
            raise ValueError(f'remedies must be "auto" or a list of names, got {remedies!r}')
        else:
            wanted = [tuple(name.split("+")) for name in remedies]
        probe = build(seeds[0])
        applicable: list[tuple[str, ...]] = []
        skipped: dict[str, str] = {}
        changes: dict[str, tuple[str, ...]] = {}
        for names in wanted:
            if remedies == "auto" and len(applicable) >= max_remedies:
                break
            try:
                treatment = apply_remedies(names, probe, settings, task, seed=seeds[0])
            except NotApplicable as error:
                skipped["+".join(names)] = error.reason
                continue
            applicable.append(names)
            changes[treatment.name] = treatment.changes
        if remedies == "auto" and combine and len(applicable) >= 2:
            pair = applicable[0] + applicable[1]
            try:
                changes["+".join(pair)] = apply_remedies(pair, probe, settings, task).changes
                applicable.append(pair)
            except NotApplicable as error:
                skipped["+".join(pair)] = error.reason
        bar.add(len(applicable) * len(seeds))

        def treat(names: tuple[str, ...]) -> Callable[[int], tuple[nn.Module, dict, Task]]:
            def make(seed: int) -> tuple[nn.Module, dict[str, Any], Task]:
                t: Treatment = apply_remedies(names, build(seed), settings, task, seed=seed)
                return t.model, t.settings, t.task

            return make

        trial_runs = {"+".join(names): run(treat(names)) for names in applicable}

    higher = task.higher_is_better
    base_row = _row("baseline", baseline, baseline, task.metric, higher)
    rows = [_row(name, r, baseline, task.metric, higher) for name, r in trial_runs.items()]
    trials = pd.DataFrame(rows, columns=list(base_row.index))
    if len(trials):
        trials = trials.sort_values("improvement", ascending=False, na_position="last")
        trials = trials.reset_index(drop=True)
    proven = trials[trials["ci_low"] > 0] if len(trials) else trials
    best = None if proven.empty else str(proven.iloc[0]["remedy"])
    return Prescription(
        baseline=base_row,
        trials=trials,
        findings=findings,
        best=best,
        changes=changes,
        skipped=skipped,
        metric=task.metric,
        settings={**settings, **budget},
    )


def _row(name: str, run: _Run, baseline: _Run, metric: str, higher: bool) -> pd.Series:
    """One line of the table; a diverged run's metric counts as nan (no improvement)."""
    key = f"test_{metric}"

    def values(r: _Run, k: str) -> np.ndarray:
        return np.array([math.nan if m["diverged"] else m[k] for m in r.metrics], dtype=float)

    test, base = values(run, key), values(baseline, key)
    diffs = (test - base) if higher else (base - test)
    finite = diffs[np.isfinite(diffs)]
    low, high = bootstrap_ci(finite) if finite.size else (math.nan, math.nan)
    loss = values(run, "train_loss")

    def spread(x: np.ndarray) -> tuple[float, float]:
        x = x[np.isfinite(x)]
        return (mean_spread(x).mean, mean_spread(x).std) if x.size else (math.nan, math.nan)

    flows = np.array(run.flows, dtype=float)
    flows = flows[np.isfinite(flows)]
    return pd.Series(
        {
            "remedy": name,
            "train_loss": spread(loss)[0],
            "train_loss_std": spread(loss)[1],
            key: spread(test)[0],
            f"{key}_std": spread(test)[1],
            "flow_ratio": float(np.median(flows)) if flows.size else math.nan,
            "improvement": float(finite.mean()) if finite.size else math.nan,
            "ci_low": low,
            "ci_high": high,
            "remaining": ", ".join(run.kinds) or "none",
        }
    )


class _Bar:
    """A rich progress bar over the doctor's training runs (drawn on terminals only)."""

    def __init__(self, enabled: bool) -> None:
        console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]doctor"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("runs"),
            console=console,
            disable=not (enabled and console.is_terminal),
            transient=True,
        )
        self.task_id = self.progress.add_task("doctor", total=0)

    def add(self, runs: int) -> None:
        total = self.progress.tasks[0].total or 0
        self.progress.update(self.task_id, total=total + runs)

    def advance(self) -> None:
        self.progress.advance(self.task_id)

    def __enter__(self) -> _Bar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)


__all__ = ["Prescription", "candidates", "doctor", "flow_ratio"]
