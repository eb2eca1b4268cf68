"""Which remedies the doctor tries: the findings' candidates, the ones that apply, and a
follow-up round on what the best cure left behind."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from gradsight.data.task import Task
from gradsight.diagnosis import Finding
from gradsight.doctor.trial import TREATED_SEVERITIES, RunResult
from gradsight.remedies import NotApplicable, apply_remedies

# Remedies of the remaining findings tried on top of the best cure in the follow-up round.
FOLLOW_UPS = 2


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
class Selection:
    """Remedies (tuples of names, a combination having several) that apply to a probe model
    (the first seed's), in the order chosen, what each changes, and why others were skipped.

    Attributes:
        model, settings, task, seed: What each remedy is applied to once, to learn whether
            it applies (and what it changes), before any trial is trained.
    """

    model: nn.Module
    settings: dict[str, Any]
    task: Task
    seed: int
    chosen: list[tuple[str, ...]] = field(default_factory=list)
    changes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def consider(self, names: tuple[str, ...]) -> bool:
        """Choose `names` if they apply (and were not considered before); record why not."""
        key = "+".join(names)
        if names in self.chosen or key in self.skipped:
            return False
        try:
            treatment = apply_remedies(names, self.model, self.settings, self.task, seed=self.seed)
        except NotApplicable as error:
            self.skipped[key] = error.reason
            return False
        self.chosen.append(names)
        self.changes[key] = treatment.changes
        return True


def follow_up_base(
    baseline: Sequence[RunResult], trials: dict[tuple[str, ...], Sequence[RunResult]], gains: dict
) -> tuple[str, ...] | None:
    """The trial to treat further: the one that cured the most of the baseline's finding
    kinds (ties: larger improvement, then fewer remedies, then the order tried), provided some
    warning/critical finding remains after it; None when no trial cured anything."""
    before = set(baseline[0].kinds)
    best, best_key = None, None
    for order, (names, runs) in enumerate(trials.items()):
        cured = len(before - set(runs[0].kinds))
        if not cured or not runs[0].kinds:
            continue
        gain = gains.get(names, math.nan)
        key = (cured, gain if math.isfinite(gain) else -math.inf, -len(names), -order)
        if best_key is None or key > best_key:
            best, best_key = names, key
    return best


def follow_ups(
    base: tuple[str, ...], remaining: Sequence[Finding], selection: Selection
) -> list[tuple[str, ...]]:
    """`base` plus each of the first `FOLLOW_UPS` applicable remedies of the findings that
    remain after it (chosen in `selection`)."""
    chosen: list[tuple[str, ...]] = []
    for name in candidates(remaining):
        if len(chosen) == FOLLOW_UPS:
            break
        if name not in base and selection.consider((*base, name)):
            chosen.append((*base, name))
    return chosen
