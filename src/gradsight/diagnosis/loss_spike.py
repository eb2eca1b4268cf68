"""loss_spike: the loss jumps suddenly, and training recovers.

A spike is a step that sends the weights somewhere much worse: a gradient far larger than
usual (a rare batch, an attention logit or embedding that grew, Adam's second-moment
estimate lagging a sudden gradient), times a learning rate that lets it through. Large
language model runs show them at high learning rates and without warm-up (Chowdhery et al.
2022, PaLM, sec. 5.1; Wortsman et al. 2023; Molybog et al. 2023, "A Theory on Adam
Instability in Large-Scale Machine Learning"). Training often recovers, at the cost of the
steps spent, and the next spike may not recover: a spike that never recovers is a learning
rate too high (`learning_rate`).

A single spike the run recovered from, in a run that went on to learn, is reported as
"info"; repeated spikes, or one the loss is still up from, as a warning.

Each step's loss is compared with the median of the steps before it, in units of their
robust spread (`_loss.spikes`); the layer named is the one whose gradient norm jumped first,
and most, at or just before the spike.
"""

from __future__ import annotations

from gradsight.diagnosis import thresholds as th
from gradsight.diagnosis._loss import first_jumping_layer, loss_curve, spikes
from gradsight.diagnosis.finding import Finding, Remedy
from gradsight.diagnosis.metrics import Context, fmt, run_text
from gradsight.telemetry.history import History


def rule(history: History, context: Context) -> list[Finding]:
    """Loss spikes the run recovered from, or that came too late in the run to tell (see the
    module docstring); one the loss never came back from is a learning rate too high."""
    shown = [s for s in spikes(history) if not s.stalled]
    if not shown:
        return []
    first = shown[0]
    biggest = max(shown, key=lambda s: s.relative_jump)
    jumped = first_jumping_layer(history, first.step)
    where = (
        f"; the gradient of {jumped[0]} jumped first ({fmt(jumped[1])} times its median)"
        if jumped
        else ""
    )
    run = run_text(history)
    # One spike, recovered, in a run that went on to learn clearly (below the uniform guess,
    # or its start, by CHANCE_MARGIN, without giving its progress back) cost only the steps
    # it took to recover: worth knowing, not a fault. Repeated or unrecovered spikes are.
    curve = loss_curve(history, context)
    level = (curve.chance or curve.start) if curve is not None else None
    learned = (
        curve is not None
        and level is not None
        and not curve.regressed
        and curve.end_median < (1 - th.CHANCE_MARGIN) * level
    )
    isolated = len(shown) == 1 and first.recovered
    more = f" ({len(shown)} spikes, the largest +{fmt(100 * biggest.relative_jump)}%)"
    return [
        Finding(
            kind="loss_spike",
            severity="info" if isolated and learned else "warning",
            summary=(
                f"The loss spiked at step {first.step}: from {fmt(first.reference)} to "
                f"{fmt(first.peak)} (+{fmt(100 * first.relative_jump)}%, {fmt(first.spreads)} "
                f"robust standard deviations), "
                + (
                    f"back by step {first.recovered_step}"
                    if first.recovered
                    else "still up when the run ended"
                )
                + (more if len(shown) > 1 else "")
                + where
                + (f"; {run}" if run else "")
                + "."
            ),
            explanation=(
                "One step sent the weights somewhere much worse: a gradient far larger than "
                "usual times a learning rate that lets it through. Training recovered this "
                "time; the next spike may not."
            ),
            layers=(jumped[0],) if jumped else (),
            steps=tuple(s.step for s in shown),
            evidence={
                "first_step": first.step,
                "reference": first.reference,
                "peak": first.peak,
                "relative_jump": first.relative_jump,
                "robust_z": first.spreads,
                "recovered_step": first.recovered_step,
                "spikes": len(shown),
                "largest_relative_jump": biggest.relative_jump,
                "first_layer": jumped[0] if jumped else None,
                "layer_jump": jumped[1] if jumped else None,
                "optimizer": run,
            },
            remedies=(
                Remedy("lower_learning_rate", "A lower peak rate keeps a rare gradient small."),
                Remedy("lr_warmup", "Small first steps while the optimizer's statistics settle."),
                Remedy("gradient_clipping", "Caps the step a rare, huge gradient can take."),
            ),
        )
    ]


RULES = (rule,)
