"""`diagnose`: run every rule on a History, most severe findings first."""

from __future__ import annotations

from gradsight.data.task import Task
from gradsight.diagnosis import (
    attention_collapse,
    covariate_shift,
    dead_units,
    exploding_gradients,
    learning_rate,
    loss_plateau,
    loss_spike,
    non_finite,
    non_zero_centered,
    residual_growth,
    saddle_point,
    saturated_activations,
    vanishing_gradients,
)
from gradsight.diagnosis._advice import advise
from gradsight.diagnosis.finding import SEVERITY_RANK, Findings
from gradsight.diagnosis.metrics import Context
from gradsight.telemetry.history import History

RULES = (
    *non_finite.RULES,
    *vanishing_gradients.RULES,
    *exploding_gradients.RULES,
    *saturated_activations.RULES,
    *dead_units.RULES,
    *learning_rate.RULES,
    *loss_spike.RULES,
    *attention_collapse.RULES,
    *residual_growth.RULES,
    *loss_plateau.RULES,
    *saddle_point.RULES,
    *non_zero_centered.RULES,
    *covariate_shift.RULES,
)


def diagnose(history: History, *, task: Task | None = None) -> Findings:
    """Name the pathologies visible in a run, with their evidence and ranked remedies.

    Args:
        history: What `gs.watch` recorded (loss, per-layer gradients, updates, activations).
        task: The task, when at hand: lets the input rules check the data.

    Returns:
        Findings, most severe first (rules' order within a severity), their remedies fitted to
        the run (`_advice`: nothing the optimizer already does, no larger steps for an
        unstable loss, the optimizer and its settings named); a list that a notebook shows
        as cards.
    """
    context = Context(task=task)
    findings = [finding for rule in RULES for finding in rule(history, context)]
    findings = advise(findings, history, context)
    return Findings(sorted(findings, key=lambda f: -SEVERITY_RANK[f.severity]))
