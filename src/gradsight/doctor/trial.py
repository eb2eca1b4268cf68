"""One training run of the doctor, as a job an `Executor` can ship to another process.

A job is `run_job(patient, job)`: both arguments are picklable frozen dataclasses, the
function is module-level, and the run seeds everything it draws, so its result is the same
in this process, in a worker process and on a Ray worker.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gradsight.curvature import curvature_metrics
from gradsight.data.task import Task
from gradsight.diagnosis import Finding, diagnose
from gradsight.diagnosis import thresholds as th
from gradsight.diagnosis.metrics import error_norms, median_ratio
from gradsight.models.init import seeded
from gradsight.remedies import apply_remedies
from gradsight.train.fit import HESSIAN_PROBE, fit

ModelFactory = Callable[..., nn.Module]

# What each run records: every step's stats would cost more than the diagnosis needs.
WATCH = {"every": 10}
# Severities whose findings count as a pathology; "info" findings alone mean a healthy run.
TREATED_SEVERITIES = ("warning", "critical")
# Findings after which the baseline's first seed measures the Hessian's extreme eigenvalues:
# on a plateau, lambda_min < 0 tells a saddle from a flat minimum (Dauphin et al. 2014).
CURVATURE_SUSPECTS = ("saddle_point", "loss_plateau")


@dataclass(frozen=True)
class Patient:
    """What every run of one doctor call shares (read-only).

    Attributes:
        model: A factory `build(seed=...)` or `build()` (called under the seed), or a model
            whose initial state every run starts from (a deep copy).
        task: The problem.
        settings: Keyword arguments of `gs.fit` for the baseline (optimizer, lr, ...).
        budget: steps, batch_size and device of every run.
    """

    model: nn.Module | ModelFactory
    task: Task
    settings: dict[str, Any]
    budget: dict[str, Any]


@dataclass(frozen=True)
class Job:
    """One run: the remedies applied (none for the baseline), the seed, and whether to probe
    the curvature when the run's findings suspect a saddle or plateau."""

    remedies: tuple[str, ...]
    seed: int
    curvature: bool = False


@dataclass(frozen=True)
class Curvature:
    """The loss Hessian's extreme eigenvalues where the baseline's first seed ended.

    Attributes:
        lambda_min: Smallest eigenvalue (Lanczos, both ends of one Krylov space).
        lambda_max: Largest eigenvalue.
        grad_norm: Norm of the loss gradient on the same batch.
        seed: The run's seed.
        step: Steps trained when measured.
        examples: Training examples in the batch (the first `HESSIAN_PROBE`).
    """

    lambda_min: float
    lambda_max: float
    grad_norm: float
    seed: int
    step: int
    examples: int

    @property
    def saddle(self) -> bool:
        """Clearly negative curvature: lambda_min < -SADDLE_NEGATIVE_CURVATURE * |lambda_max|,
        the diagnosis' saddle test; where the loss is stuck, it marks a saddle, not a minimum."""
        return self.lambda_min < -th.SADDLE_NEGATIVE_CURVATURE * abs(self.lambda_max)


@dataclass(frozen=True)
class RunResult:
    """What one run sends back: `gs.fit`'s final metrics, the gradient flow ratio, the
    findings on its history, and the curvature when probed."""

    metrics: dict[str, Any]
    flow: float
    findings: list[Finding]
    curvature: Curvature | None = None

    @property
    def kinds(self) -> tuple[str, ...]:
        """Distinct kinds of the warning/critical findings, most severe first."""
        serious = (f.kind for f in self.findings if f.severity in TREATED_SEVERITIES)
        return tuple(dict.fromkeys(serious))


def build_model(source: nn.Module | ModelFactory, seed: int) -> nn.Module:
    """A fresh model for `seed`: the factory called with `seed=` (or under that seed), or a
    deep copy of the given model (the same weights for every seed)."""
    if isinstance(source, nn.Module):
        return copy.deepcopy(source)
    try:
        takes_seed = "seed" in inspect.signature(source).parameters
    except (TypeError, ValueError):
        takes_seed = False
    with seeded(seed):
        model = source(seed=seed) if takes_seed else source()
    if not isinstance(model, nn.Module):
        raise TypeError(f"the model factory returned {type(model).__name__}, not an nn.Module")
    return model


def run_job(patient: Patient, job: Job) -> RunResult:
    """Apply the job's remedies to a fresh model, train it with `gs.fit` (watched), diagnose."""
    model, settings, task = build_model(patient.model, job.seed), patient.settings, patient.task
    if job.remedies:
        treatment = apply_remedies(job.remedies, model, settings, task, seed=job.seed)
        model, settings, task = treatment.model, treatment.settings, treatment.task
    result = fit(model, task, **settings, **patient.budget, seed=job.seed, watch=WATCH)
    findings = diagnose(result.history, task=task)
    curvature = None
    kinds = {f.kind for f in findings if f.severity in TREATED_SEVERITIES}
    if job.curvature and kinds & set(CURVATURE_SUSPECTS) and not result.metrics["diverged"]:
        curvature = probe_curvature(model, task, job.seed, int(result.metrics["steps"]))
        findings = [_with_curvature(f, curvature) for f in findings]
    return RunResult(result.metrics, flow_ratio(result.history), findings, curvature)


def probe_curvature(model: nn.Module, task: Task, seed: int, step: int) -> Curvature:
    """lambda_min, lambda_max (`gs.curvature.curvature_metrics`) and the gradient norm on the
    first `HESSIAN_PROBE` training examples, with the model in train mode as it trained."""
    x, y = task.split("train")
    device = next(model.parameters()).device
    batch = (x[:HESSIAN_PROBE].to(device), y[:HESSIAN_PROBE].to(device))
    model.train()
    ends = curvature_metrics(model, task.loss_fn, batch, seed=seed)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(task.loss_fn(model(batch[0]), batch[1]), params)
    grad_norm = float(torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads])))
    return Curvature(
        lambda_min=ends["curv/lambda_min"],
        lambda_max=ends["curv/lambda_max"],
        grad_norm=grad_norm,
        seed=seed,
        step=step,
        examples=len(batch[0]),
    )


def _with_curvature(finding: Finding, curvature: Curvature) -> Finding:
    """A suspecting finding with the measured eigenvalues added to its evidence."""
    if finding.kind not in CURVATURE_SUSPECTS:
        return finding
    evidence = {
        **finding.evidence,
        "lambda_min": curvature.lambda_min,
        "lambda_max": curvature.lambda_max,
    }
    return dataclasses.replace(finding, evidence=evidence)


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
