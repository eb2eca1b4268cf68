"""`Prescription`: what the doctor found, what it measured, and what to change."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from gradsight.diagnosis import Finding
from gradsight.doctor.prescription_html import prescription_html
from gradsight.doctor.trial import TREATED_SEVERITIES, Curvature
from gradsight.train.optimizers import OPTIMIZERS


@dataclass
class Prescription:
    """What the doctor found and measured.

    Attributes:
        baseline: The baseline's row (same columns as `trials`).
        trials: One row per remedy (name "a+b" for a combination), best first: train_loss,
            test_<metric> (mean and std over seeds; a diverged run scores what a model that
            learnt nothing scores), flow_ratio (first/last layer gradient norm, median over
            steps), improvement (paired mean of the test metric's change, positive is
            better) with its bootstrap interval ci_low/ci_high, diverged (seeds whose run
            diverged) and `remaining` (finding kinds still diagnosed after the remedy).
        findings: The baseline's findings (first seed); a plateau's evidence carries the
            curvature's lambda_min and lambda_max when it was probed.
        best: The best remedy whose interval lies above zero, or None.
        changes: Remedy name -> what to change in the user's code, one line per remedy.
        skipped: Remedy name -> why it did not apply.
        metric: The task's metric ("accuracy" or "mse").
        settings: The baseline's training settings and budget (steps, batch_size, device).
        curvature: The Hessian's extreme eigenvalues where the baseline's first seed ended,
            measured when its findings suspected a saddle or plateau; else None.
        seeds: The seeds every remedy and the baseline trained with.
    """

    baseline: pd.Series
    trials: pd.DataFrame
    findings: list[Finding]
    best: str | None
    changes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    metric: str = "accuracy"
    settings: dict[str, Any] = field(default_factory=dict)
    curvature: Curvature | None = None
    seeds: list[int] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """Whether the baseline had no warning or critical finding."""
        return not any(f.severity in TREATED_SEVERITIES for f in self.findings)

    def summary(self, table: bool = True) -> str:
        """What to change, in words and code, with the measured numbers (and, with `table`,
        the trials as text)."""
        metric = f"test_{self.metric}"
        base = self.baseline
        lines = [
            f"Baseline ({_describe(self.settings)}): {metric} {base[metric]:.4g} "
            f"± {base[metric + '_std']:.2g}, train loss {base['train_loss']:.4g}.",
        ]
        if base["diverged"]:
            lines[0] = lines[0][:-1] + (
                f"; it diverged in {base['diverged']} of {len(self.seeds)} seeds "
                "(scored as a model that learnt nothing)."
            )
        if self.healthy:
            lines.append("No pathology found: no change needed.")
            return "\n".join(lines)
        serious = [f for f in self.findings if f.severity in TREATED_SEVERITIES]
        lines.append("Findings: " + ", ".join(f"{f.kind} ({f.severity})" for f in serious) + ".")
        if self.curvature is not None:
            lines.append(_curvature_line(self.curvature))
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

    def _repr_html_(self) -> str:
        """The notebook display: the verdict, the improvement figure, trials and findings."""
        return prescription_html(self)


def _curvature_line(c: Curvature) -> str:
    verdict = (
        "negative curvature: the loss is stuck at a saddle, not a minimum (Dauphin et al. 2014)."
        if c.saddle
        else "no clearly negative curvature: a flat region rather than a saddle."
    )
    return (
        f"Curvature where the baseline stopped (seed {c.seed}, step {c.step}): lambda_min "
        f"{c.lambda_min:.3g}, lambda_max {c.lambda_max:.3g}, gradient norm {c.grad_norm:.3g}; "
        + verdict
    )


def _describe(settings: dict[str, Any]) -> str:
    shown = dict(settings)
    if shown.get("lr") is None and shown.get("optimizer") in OPTIMIZERS:
        # No lr given: the run trained with its optimizer's default, which is said so.
        shown["lr"] = f"{OPTIMIZERS[shown['optimizer']].default_lr:g} (default)"
    keys = ("optimizer", "lr", "momentum", "weight_decay", "clip_norm", "steps", "batch_size")
    return ", ".join(f"{k}={shown[k]}" for k in keys if shown.get(k) not in (None, 0, 0.0))
