"""Remedies that fit the run: what the optimizer already does is not advised again, advice
that would make an unstable run worse is dropped, and the sentences name the optimizer.

Applied by `diagnose` to every finding, so each rule may list its remedies in general terms:
- an adaptive optimizer (Adam, AdamW, RMSprop, ...) already averages and rescales its steps:
  no "momentum", no "adaptive_optimizer";
- momentum or weight decay already set, a warm-up already in the logged learning rate,
  gradients already clipped (a ceiling on the logged gradient norm): not advised again;
- a loss that spiked, diverged or became non-finite, or a run found to have a learning rate
  too high: never "raise_learning_rate";
- the reasons of the training-setting remedies name the optimizer and its settings
  ("AdamW at lr 3e-2: try 3e-3").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from gradsight.diagnosis import remedy_settings
from gradsight.diagnosis._loss import divergence, loss_curve, spikes
from gradsight.diagnosis.finding import Finding, Remedy
from gradsight.diagnosis.metrics import (
    Context,
    adaptive,
    clipped_at,
    lr_text,
    optimizer_info,
    peak_lr,
    run_text,
    warms_up,
)
from gradsight.telemetry.history import History


def _setting(name: str) -> float:
    """A value a training remedy sets (`remedy_settings`)."""
    return float(getattr(remedy_settings, name))


@dataclasses.dataclass(frozen=True)
class Run:
    """What the advice needs to know of a run."""

    text: str | None  # "AdamW at lr 3e-2", or None when the optimizer is unknown
    lr: float | None
    adaptive: bool
    momentum: float
    weight_decay: float
    unstable: bool  # the loss spiked, diverged or became non-finite
    warmup: bool  # the logged learning rate warms up already
    clip: float | None  # the norm gradients are clipped to, when they are

    @classmethod
    def of(cls, history: History, context: Context) -> Run:
        """The run as `history` describes it."""
        info = optimizer_info(history)
        unstable = False
        if "loss" in history:
            loss = history.series("loss").to_numpy()
            unstable = (
                not np.isfinite(loss).all()
                or divergence(loss_curve(history, context)) is not None
                or bool(spikes(history))
            )
        return cls(
            text=run_text(history),
            lr=peak_lr(history),
            adaptive=adaptive(history),
            momentum=float(info.get("momentum") or 0.0),
            weight_decay=float(info.get("weight_decay") or 0.0),
            unstable=unstable,
            warmup=warms_up(history),
            clip=clipped_at(history),
        )


def _lower(run: Run, reason: str) -> str:
    if run.lr is None:
        return f"{run.text}: try a tenth of its learning rate."
    return f"{run.text}: try {lr_text(run.lr / _setting('LR_FACTOR'))}."


def _raise(run: Run, reason: str) -> str:
    if run.lr is None:
        return f"{run.text}: try ten times its learning rate."
    return f"{run.text}: try {lr_text(run.lr * _setting('LR_FACTOR'))}."


def _warmup(run: Run, reason: str) -> str:
    fraction = _setting("WARMUP_FRACTION")
    return (
        f"{run.text} from the first step: ramp the rate up linearly over the first "
        f"{fraction:.0%} of steps, while the optimizer's statistics and the weights settle."
    )


def _clip(run: Run, reason: str) -> str:
    clip = _setting("CLIP_NORM")
    return f"{run.text}: clip the global gradient norm at {clip:g}; {_lowercase(reason)}"


def _momentum(run: Run, reason: str) -> str:
    momentum = _setting("MOMENTUM")
    return f"{run.text} without momentum: momentum {momentum:g}; {_lowercase(reason)}"


def _adaptive(run: Run, reason: str) -> str:
    return f"{run.text}: Adam at lr 1e-3 instead; {_lowercase(reason)}"


def _decay(run: Run, reason: str) -> str:
    decay = _setting("WEIGHT_DECAY")
    return f"{run.text} without weight decay: weight_decay {decay:g}; {_lowercase(reason)}"


def _prefixed(run: Run, reason: str) -> str:
    return f"{run.text}: {_lowercase(reason)}" if reason else f"{run.text}."


def _lowercase(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


# Training-setting remedies: their sentence names the optimizer and its settings.
SENTENCES: dict[str, Callable[[Run, str], str]] = {
    "lower_learning_rate": _lower,
    "raise_learning_rate": _raise,
    "lr_warmup": _warmup,
    "lr_range_test": _prefixed,
    "gradient_clipping": _clip,
    "momentum": _momentum,
    "adaptive_optimizer": _adaptive,
    "weight_decay": _decay,
}


def fits(name: str, run: Run) -> bool:
    """Whether remedy `name` makes sense for `run` (see the module docstring)."""
    if name in ("momentum", "adaptive_optimizer") and run.adaptive:
        return False
    if name == "momentum" and run.momentum > 0:
        return False
    if name == "weight_decay" and run.weight_decay > 0:
        return False
    if (name == "lr_warmup" and run.warmup) or (name == "gradient_clipping" and run.clip):
        return False
    return not (name == "raise_learning_rate" and run.unstable)


def advise(findings: list[Finding], history: History, context: Context) -> list[Finding]:
    """`findings` with their remedies fitted to the run (order kept; a finding keeps at least
    an LR range test when every remedy it listed was dropped)."""
    if not findings:
        return findings
    run = Run.of(history, context)
    if any(f.kind == "learning_rate_too_high" for f in findings):
        run = dataclasses.replace(run, unstable=True)
    fitted = []
    for finding in findings:
        remedies = [r for r in finding.remedies if fits(r.name, run)]
        if finding.remedies and not remedies:
            remedies = [Remedy("lr_range_test", "Find the rates at which the loss falls.")]
        if run.text is not None:
            remedies = [
                Remedy(r.name, SENTENCES[r.name](run, r.reason)) if r.name in SENTENCES else r
                for r in remedies
            ]
        fitted.append(dataclasses.replace(finding, remedies=tuple(remedies)))
    return fitted
