"""`doctor`: baseline probe -> diagnose -> remedy trials -> `Prescription`.

Every trial trains with the same budget (steps, batch size) and the same seeds as the
baseline, so seed s of a remedy and seed s of the baseline see the same batches; the
improvement is measured per seed (paired) and summarised with a bootstrap interval. Every
training run is one job of an `Executor`: the baseline's seeds first (its findings choose the
remedies), then every trial in one call, so trials run in parallel where the executor can.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Sequence
from functools import partial

from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
from torch import nn
from torch.utils.data import DataLoader

from gradsight.data.task import Task
from gradsight.doctor.choose import Selection, candidates, follow_up_base, follow_ups
from gradsight.doctor.inputs import as_task
from gradsight.doctor.prescription import Prescription
from gradsight.doctor.table import proven, ranked, row
from gradsight.doctor.trial import (
    Job,
    ModelFactory,
    Patient,
    RunResult,
    build_model,
    flow_ratio,
    run_job,
)
from gradsight.errors import InputError
from gradsight.executor import JOB_THREADS, Executor, torch_threads
from gradsight.progress import ProgressBar

# Remedies tried with remedies="auto": the first this many distinct applicable ones.
AUTO_REMEDIES = 5

Runs = dict[tuple[str, ...], list[RunResult]]


def doctor(
    model_or_factory: nn.Module | ModelFactory,
    task_or_loader: Task | DataLoader | tuple,
    *,
    # the data, when not a Task
    loss: str | None = None,
    holdout: float = 0.2,
    # the baseline's training
    optimizer: str = "sgd",
    lr: float | None = None,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    clip_norm: float | None = None,
    steps: int = 300,
    batch_size: int | None = 64,
    device: str = "cpu",
    # the trials
    seeds: int | Sequence[int] = 3,
    remedies: str | Sequence[str] = "auto",
    max_remedies: int = AUTO_REMEDIES,
    combine: bool = True,
    follow_up: bool = True,
    # where they run
    executor: Executor | str | None = None,
    progress: bool = False,
) -> Prescription:
    """Diagnose a model's training, try the remedies, and say which one measurably helps.

    1. Baseline: train a fresh model per seed with `gs.fit` (watched) and `gs.diagnose` it;
       when the first seed's findings suspect a saddle or plateau, measure the Hessian's
       lambda_min and lambda_max where it stopped (lambda_min < 0: a saddle).
    2. Candidates: with remedies="auto", the first `max_remedies` distinct applicable remedies
       of the warning/critical findings, plus (with `combine`) the top two together.
    3. Trials: each remedy applied to a fresh model per seed, trained with the same settings,
       steps, batch size and seeds.
    4. Ranking: improvement = mean over seeds of (trial - baseline) test metric (sign flipped
       for mse), paired by seed, with a 95% percentile bootstrap interval (Efron 1979); the
       best remedy is the largest improvement whose interval lies above zero.
    5. Follow-up (with `follow_up` and "auto", only when step 4 proved nothing): the trial
       that cured the most of the baseline's findings, combined with each of the first two
       applicable remedies of the findings it left (a cure can expose the next problem:
       He init stops the explosion, then the learning rate is too low), ranked the same way.

    Args:
        model_or_factory: A factory `build(seed=...)` (or `build()`, called under the seed)
            giving a fresh model, or a model whose initial state is copied for every run.
            Executors other than the serial one need a picklable factory (a module-level
            function or a functools.partial of one).
        task_or_loader: The problem: a `gs.data.Task`, a DataLoader of (inputs, targets)
            batches or an (inputs, targets) pair of tensors (see `as_task`).
        loss: For a loader or tensors: "cross_entropy" or "mse" (None infers it from the
            targets' dtype).
        holdout: For a loader or tensors: the fraction held out to compare remedies on.
        optimizer, lr, momentum, weight_decay, clip_norm: The baseline's training settings.
        steps: Optimizer steps of every run.
        batch_size: Examples per step.
        device: Where to train.
        seeds: How many seeds (0..n-1), or the seeds themselves.
        remedies: "auto", or remedy names; "a+b" is a combination.
        max_remedies: Remedies tried with "auto" (not counting the combination).
        combine: Also try the top two auto remedies together.
        follow_up: Try the follow-up round of step 5.
        executor: Where the runs go: an `Executor`, "local" or "ray", or None (serial, in
            this process). Every run uses one torch thread, so results do not depend on it.
        progress: Show a progress bar over the runs (on a terminal or in a notebook).

    Returns:
        A `Prescription`.
    """
    seeds = _seed_list(seeds)
    if steps < 1:
        raise InputError(f"steps must be >= 1, got {steps}")
    if remedies != "auto" and isinstance(remedies, str):
        raise InputError(f'remedies must be "auto" or a list of names, got {remedies!r}')
    task = as_task(task_or_loader, loss, holdout)
    executor = _executor(executor)
    source = _source(model_or_factory, executor)
    settings = {
        "optimizer": optimizer,
        "lr": lr,
        "momentum": momentum,
        "weight_decay": weight_decay,
        "clip_norm": clip_norm,
    }
    budget = {"steps": steps, "batch_size": batch_size, "device": device}
    job = partial(run_job, Patient(source, task, settings, budget))

    # Trying each remedy once here (lr_find, layer-wise pretraining) runs on the jobs' one
    # thread too: tiny ops on several threads are slower, and far slower on a busy machine.
    columns = (TextColumn("[bold]doctor"), BarColumn(), MofNCompleteColumn(), TextColumn("runs"))
    with ProgressBar(*columns, total=0, enabled=progress) as bar, torch_threads(JOB_THREADS):
        bar.add(len(seeds))
        jobs = [Job((), seed, curvature=i == 0) for i, seed in enumerate(seeds)]
        baseline = executor.map(job, jobs, done=bar.advance)
        findings = baseline[0].findings
        selection = Selection(build_model(source, seeds[0]), settings, task, seeds[0])
        if remedies == "auto":
            for name in candidates(findings):
                if len(selection.chosen) == max_remedies:
                    break
                selection.consider((name,))
            if combine and len(selection.chosen) >= 2:
                selection.consider(selection.chosen[0] + selection.chosen[1])
        else:
            for names in remedies:
                selection.consider(tuple(names.split("+")))
        trials = _trials(executor, job, selection.chosen, seeds, bar)

        base_row = row("baseline", baseline, baseline, task)
        rows = {names: row("+".join(names), runs, baseline, task) for names, runs in trials.items()}
        if follow_up and remedies == "auto" and not proven(ranked(rows.values(), base_row.index)):
            gains = {names: r["improvement"] for names, r in rows.items()}
            base = follow_up_base(baseline, trials, gains)
            if base is not None:
                remaining = trials[base][0].findings
                more = follow_ups(base, remaining, selection)
                for names, runs in _trials(executor, job, more, seeds, bar).items():
                    trials[names] = runs
                    rows[names] = row("+".join(names), runs, baseline, task)

    table = ranked(rows.values(), base_row.index)
    return Prescription(
        baseline=base_row,
        trials=table,
        findings=findings,
        best=proven(table),
        changes=selection.changes,
        skipped=selection.skipped,
        metric=task.metric,
        settings={**settings, **budget},
        curvature=baseline[0].curvature,
        seeds=seeds,
    )


def _trials(
    executor: Executor, job, chosen: Sequence[tuple[str, ...]], seeds: list[int], bar: ProgressBar
) -> Runs:
    """Every remedy x seed as one job, all in one `map` call; results grouped by remedy."""
    bar.add(len(chosen) * len(seeds))
    results = executor.map(job, [Job(names, s) for names in chosen for s in seeds], bar.advance)
    n = len(seeds)
    return {names: results[i * n : (i + 1) * n] for i, names in enumerate(chosen)}


def _seed_list(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, int):
        if seeds < 1:
            raise InputError(f"seeds must be >= 1, got {seeds}")
        return list(range(seeds))
    if not list(seeds):
        raise InputError("seeds must not be empty")
    return list(seeds)


def _executor(executor: Executor | str | None) -> Executor:
    if executor is None:
        return Executor()
    if isinstance(executor, str):
        return Executor(executor)
    if not isinstance(executor, Executor):
        raise TypeError(f"executor must be an Executor, a kind or None, got {executor!r}")
    return executor


def _source(model_or_factory: nn.Module | ModelFactory, executor: Executor) -> object:
    """The model (a snapshot of its initial state) or the factory every job builds from."""
    if isinstance(model_or_factory, nn.Module):
        return copy.deepcopy(model_or_factory)
    if not callable(model_or_factory):
        raise TypeError(
            f"model_or_factory must be an nn.Module or a callable, got {model_or_factory!r}"
        )
    if executor.kind == "local" and executor.workers > 1:  # spawned workers unpickle the jobs
        try:
            pickle.dumps(model_or_factory)
        except Exception as error:  # pickle raises several types for unpicklable objects
            raise TypeError(
                f"with Executor(workers={executor.workers}) the model factory must be picklable "
                f"(a module-level function or functools.partial), got {model_or_factory!r}: "
                f"{error}"
            ) from None
    return model_or_factory


__all__ = ["AUTO_REMEDIES", "Prescription", "candidates", "doctor", "flow_ratio"]
