"""learning_rate_too_high and learning_rate_too_low: the step size against the landscape.

Gradient descent on a quadratic with curvature lambda is stable only for lr < 2 / lambda
(beyond, each step overshoots and the loss grows); far below 1 / lambda it crawls. Update
ratios |dw| / |w| near 1e-3 are the practical sign of a good rate (Karpathy, CS231n).

Adaptive optimizers (Adam, AdamW, RMSprop, Adagrad, Adadelta, ...) divide each step by a
running scale of the gradient, so each weight moves by about lr per step whatever the
gradient (Kingma & Ba 2015, sec. 2.1): their update ratio is about lr / rms(w) and falls as
their own steps inflate the weights, and lr * lambda_max of the raw Hessian says nothing of
their stability (the preconditioned Hessian does; Cohen et al. 2022). For them the evidence is
the update ratio before the weights grew, and the loss curve: spikes it does not recover
from, a loss that gives back its progress, divergence (Wortsman et al. 2023 show these
instabilities grow with the learning rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gradsight.diagnosis import thresholds as th
from gradsight.diagnosis._loss import (
    LossCurve,
    divergence,
    gradient_growth,
    loss_curve,
    spikes,
)
from gradsight.diagnosis.finding import Finding, Remedy
from gradsight.diagnosis.metrics import (
    Context,
    adaptive,
    fmt,
    loss_ends,
    normalised_steps,
    peak_update_ratio,
    run_text,
    sharpness,
    table,
    update_ratio,
)
from gradsight.telemetry.history import History


@dataclass(frozen=True)
class StepEvidence:
    """What the steps themselves say of the rate.

    Attributes:
        adaptive: Whether the optimizer is adaptive.
        normalised: Whether the step's size does not follow the gradient's (adaptive, or
            clipped on most steps: `normalised_steps`).
        ratio: The update ratio read (`peak_update_ratio`, the largest logged, for
            normalised steps; the largest per-layer median of the last half otherwise), and
            `layer` where it was read.
        sharpness: The largest lr * lambda_max (None without curvature or for adaptive
            optimizers, whose stability depends on the preconditioned Hessian).
    """

    adaptive: bool
    normalised: bool
    ratio: float | None
    layer: str | None
    sharpness: float | None

    @property
    def limit(self) -> float:
        """The update ratio above which the steps rewrite the weights."""
        return th.ADAPTIVE_UPDATE_RATIO_HIGH if self.normalised else th.UPDATE_RATIO_HIGH

    @property
    def large(self) -> bool:
        """Whether the update ratio says the steps rewrite the weights."""
        return self.ratio is not None and self.ratio > self.limit

    @property
    def unstable(self) -> bool:
        """Whether lr * lambda_max passed the stability limit of gradient descent."""
        return self.sharpness is not None and self.sharpness > th.STABILITY_LIMIT


def step_evidence(history: History) -> StepEvidence:
    """The update ratio and lr * lambda_max, each read as fits the optimizer."""
    is_adaptive, normalised = adaptive(history), normalised_steps(history)
    read = peak_update_ratio(history) if normalised else update_ratio(history)
    ratio, layer = read if read is not None else (None, None)
    sharp = None if is_adaptive else sharpness(history)
    return StepEvidence(is_adaptive, normalised, ratio, layer, sharp)


def logit_growth(history: History) -> tuple[str, float, float] | None:
    """(module, first, late) when an attention module's largest logit started below
    `ATTN_LOGIT_HIGH` and ended above it (median over the last `ATTN_LATE` of logged steps):
    the steps, not the initialisation, drove the logits up. Attention logit growth is the
    instability a too-high rate causes in transformers (Dehghani et al. 2023; Wortsman et al.
    2023). None otherwise."""
    if "attn/logit_max" not in history:
        return None
    logits = table(history, "attn/logit_max")
    late = table(history, "attn/logit_max", last=th.ATTN_LATE).median()
    first = logits.apply(lambda c: c.dropna().iloc[0] if c.notna().any() else np.nan)
    grew = late[(late > th.ATTN_LOGIT_HIGH) & (first.reindex(late.index) < th.ATTN_LOGIT_HIGH)]
    if grew.empty:
        return None
    module = str(grew.idxmax())
    return module, float(first[module]), float(grew.max())


def gradients_diverged(history: History, context: Context) -> float | None:
    """The growth factor of the global gradient norm when the loss diverged without NaN
    while the gradient norm grew by `EXPLODING_GROWTH_FACTOR` and the steps showed no sign of
    a too-high rate (`StepEvidence`): then the gradients are what grew (exploding_gradients
    names it); None otherwise."""
    if divergence(loss_curve(history, context)) is None:
        return None
    growth = gradient_growth(history)
    if growth is None or growth < th.EXPLODING_GROWTH_FACTOR:
        return None
    steps = step_evidence(history)
    return None if steps.large or steps.unstable else growth


def unstable_loss(history: History, curve: LossCurve | None) -> list[str]:
    """The loss evidence of a too-high rate, in words: a spike the loss did not come back
    from, a loss that gave back its progress for a while (`_loss.regression`: with a
    decaying schedule the loss may fall again once the rate is low enough)."""
    reasons = []
    stalled = [s for s in spikes(history) if s.stalled]
    if stalled:
        s = stalled[0]
        reasons.append(
            f"the loss jumped from {fmt(s.reference)} to {fmt(s.peak)} at step {s.step} and "
            "never came back"
        )
    if curve is not None and curve.regression is not None:
        r = curve.regression
        until = "to the end" if r.ongoing else f"for {r.span} steps"
        reasons.append(
            f"the loss fell to {fmt(r.best)} (step {r.best_step}), then rose to {fmt(r.worst)} "
            f"and stayed above {until} from step {r.step}"
        )
    return reasons


def too_high(history: History, context: Context) -> list[Finding]:
    """The loss became non-finite, diverged, or gave back its progress; the attention logits
    grew past saturation; the updates rewrite the weights each step; or lr * lambda_max > 2
    (SGD)."""
    if "loss" not in history:
        return []
    curve = loss_curve(history, context)
    start, end, _ = loss_ends(history)
    steps = step_evidence(history)
    loss = history.series("loss")
    nonfinite = not np.isfinite(loss.to_numpy()).all()
    by_gradients = gradients_diverged(history, context) is not None
    diverged = None if by_gradients else divergence(curve)
    reasons = []
    if nonfinite:
        reasons.append(
            f"the loss became non-finite at step {int(loss[~np.isfinite(loss)].index[0])}"
        )
    elif diverged:
        reasons.append(diverged)
    if not (nonfinite or diverged or by_gradients):  # a divergence is its own evidence
        reasons += unstable_loss(history, curve)
    loss_evidence = bool(reasons)
    grew = logit_growth(history)
    if grew is not None:
        reasons.append(
            f"the attention logits of {grew[0]} grew from {fmt(grew[1])} to {fmt(grew[2])}"
        )
    if steps.large:
        if steps.normalised:
            reasons.append(
                f"a step changed {steps.layer}'s weights by {fmt(100 * steps.ratio)}% of their "
                f"norm (largest logged step; above {fmt(100 * steps.limit)}% one step throws "
                "the initialisation away)"
            )
        else:
            reasons.append(
                f"updates change {steps.layer}'s weights by {fmt(100 * steps.ratio)}% per step "
                "(median over the last half of the run; healthy: about 0.1%)"
            )
    if steps.unstable:
        reasons.append(f"lr * lambda_max reached {fmt(steps.sharpness)} (stable below 2)")
    if not reasons:
        return []
    run = run_text(history)
    critical = nonfinite or diverged is not None
    remedies = [Remedy("lower_learning_rate", "Try a tenth of the current rate.")]
    if steps.adaptive or loss_evidence or grew is not None:
        remedies.append(Remedy("lr_warmup", "Small first steps while the statistics settle."))
    remedies += [
        Remedy("gradient_clipping", "Bounds the step when gradients are large."),
        Remedy("lr_range_test", "Find the largest rate that still decreases the loss."),
    ]
    return [
        Finding(
            kind="learning_rate_too_high",
            severity="critical" if critical else "warning",
            summary=(
                f"The learning rate is too high{f' ({run})' if run else ''}: "
                + "; ".join(reasons)
                + "."
            ),
            explanation=(
                "Each weight moves by about lr per step whatever the gradient, so a rate large "
                "against the weights' scale throws them around: the loss spikes, stalls above "
                "where it was, or diverges."
                if steps.adaptive
                else "A step larger than about 2 / (the loss's sharpest curvature) overshoots "
                "the minimum along that direction, so the loss oscillates and grows."
            ),
            layers=(steps.layer,) if steps.large and steps.layer else (),
            steps=_steps(history, curve, loss),
            evidence={
                "loss_start": start,
                "loss_end": end,
                "loss_best": curve.best if curve else None,
                "loss_chance": curve.chance if curve else None,
                "optimizer": run,
                "adaptive": steps.adaptive,
                "max_update_ratio": steps.ratio,
                "update_ratio_read": "peak" if steps.normalised else "median of last half",
                "attention_logit_growth": list(grew) if grew else None,
                "diverged": nonfinite or diverged is not None,
                "max_lr_times_lambda_max": steps.sharpness,
            },
            remedies=tuple(remedies),
        )
    ]


def _steps(history: History, curve: LossCurve | None, loss) -> tuple[int, ...]:
    """The first non-finite step, else the first stalled spike, else where the loss started
    giving back its progress, else the best step."""
    bad = loss[~np.isfinite(loss.to_numpy())]
    if len(bad):
        return (int(bad.index[0]),)
    stalled = [s.step for s in spikes(history) if s.stalled]
    if stalled:
        return (stalled[0],)
    if curve is not None and curve.regression is not None:
        return (curve.regression.step,)
    return (curve.best_step,) if curve is not None else ()


def too_low_evidence(history: History) -> tuple[float, float, float, float] | None:
    """(largest median update ratio, loss start, loss end, relative decrease) when every
    layer's updates are below `UPDATE_RATIO_LOW` and the loss fell by less than
    `FLAT_LOSS_RELATIVE`; None otherwise."""
    if "loss" not in history:
        return None
    read = update_ratio(history)
    start, end, _ = loss_ends(history)
    if read is None or read[0] >= th.UPDATE_RATIO_LOW or not (math.isfinite(start) and start > 0):
        return None
    decrease = (start - end) / start
    return None if decrease > th.FLAT_LOSS_RELATIVE else (read[0], start, end, decrease)


def too_low(history: History, context: Context) -> list[Finding]:
    """Every layer's updates are tiny and the loss barely moves."""
    found = too_low_evidence(history)
    if found is None:
        return []
    ratio, start, end, decrease = found
    run = run_text(history)
    return [
        Finding(
            kind="learning_rate_too_low",
            severity="warning",
            summary=(
                f"The learning rate is too low{f' ({run})' if run else ''}: no layer's weights "
                f"change by more than {fmt(ratio)} of their norm per step (healthy: about "
                f"1e-3), and the loss fell by only {fmt(100 * decrease)}% ({fmt(start)} to "
                f"{fmt(end)})."
            ),
            explanation=(
                "Far below 1 / (curvature), each step covers a negligible part of the way to "
                "the minimum: training would need orders of magnitude more steps."
            ),
            evidence={
                "max_median_update_ratio": ratio,
                "loss_start": start,
                "loss_end": end,
                "optimizer": run,
            },
            remedies=(
                Remedy("raise_learning_rate", "Try ten times the current rate."),
                Remedy("lr_range_test", "Measure the range where the loss falls fastest."),
                Remedy("adaptive_optimizer", "Adam's steps do not scale with the gradient's size."),
            ),
        )
    ]


RULES = (too_high, too_low)
