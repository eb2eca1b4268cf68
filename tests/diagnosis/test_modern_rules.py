"""The rules for modern training runs on synthetic Histories with known answers: loss spikes,
divergence without NaN, plateaus judged against the uniform guess, adaptive optimizers, tied
weights, attention collapse and residual growth."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from gradsight.data.task import Task
from gradsight.diagnosis import Finding, diagnose
from gradsight.telemetry import History

STEPS = 300
ADAMW_30X = {"name": "AdamW", "family": "adaptive", "lr": 3e-2, "betas": [0.9, 0.999],
             "weight_decay": 0.0, "param_groups": 1}  # fmt: skip
SGD = {"name": "SGD", "family": "sgd", "lr": 0.1, "momentum": 0.0, "weight_decay": 0.0,
       "param_groups": 1}  # fmt: skip
LAYERS = ("fc1", "fc2", "fc3")
MATRICES = {name: {"params": [f"{name}.weight", f"{name}.bias"], "shapes": [[32, 32], [32]],
                   "tied": []} for name in LAYERS}  # fmt: skip


def decay(start: float, end: float, steps: int = STEPS, rate: float = 30.0) -> np.ndarray:
    """A healthy learning curve: exponential approach from start to end."""
    return end + (start - end) * np.exp(-np.arange(steps) / rate)


def noisy(values: np.ndarray, level: float = 0.02, seed: int = 0) -> np.ndarray:
    """Multiplicative minibatch noise of `level` (relative std)."""
    return values * (1 + level * np.random.default_rng(seed).standard_normal(len(values)))


def history(
    loss: np.ndarray,
    *,
    optimizer: dict | None = None,
    layers: dict | None = None,
    per_step: dict[str, Callable[[int], dict[str, float]]] | None = None,
    every: dict[str, int] | None = None,
) -> History:
    """A History with `loss` at every step and, for each metric of `per_step`, the layer ->
    value dict it returns for a step, logged every `every[metric]` steps (default 1)."""
    h = History()
    if optimizer is not None:
        h.meta["optimizer"] = optimizer
    if layers is not None:
        h.meta["layers"] = layers
    for step, value in enumerate(loss):
        h.log(step, "loss", float(value))
        for name, make in (per_step or {}).items():
            if step % (every or {}).get(name, 1) == 0:
                values = make(step)
                h.log_rows(step, [name] * len(values), list(values), list(values.values()))
    return h


def grads(jump_step: int | None = None, layer: str = "fc2", factor: float = 50.0):
    """Per-layer gradient norms around 1 (deterministic ripple), `layer` jumping by `factor`
    at `jump_step` and the step after."""

    def make(step: int) -> dict[str, float]:
        values = {name: 1.0 + 0.05 * math.sin(step + i) for i, name in enumerate(LAYERS)}
        if jump_step is not None and jump_step <= step <= jump_step + 1:
            values[layer] *= factor
        return values

    return make


def constant(**values: float) -> Callable[[int], dict[str, float]]:
    return lambda step: dict(values)


def global_row(value: Callable[[int], float]) -> Callable[[int], dict[str, float]]:
    return lambda step: {"": value(step)}


# -- the histories ----------------------------------------------------------------------------


def spike_that_recovers() -> History:
    loss = noisy(decay(2.3, 0.3))
    loss[150:153] *= [3.0, 2.5, 1.8]  # three steps up, then back on the curve
    return history(loss, optimizer=SGD, per_step={"grad/norm": grads(149)})


def spikes_that_recur() -> History:
    loss = noisy(decay(2.3, 0.3))
    for start in (120, 200):
        loss[start : start + 3] *= [3.0, 2.5, 1.8]
    return history(loss, optimizer=SGD, per_step={"grad/norm": grads(119)})


def smooth_healthy() -> History:
    return history(noisy(decay(2.3, 0.3)), optimizer=SGD, per_step={"grad/norm": grads()})


def converged_fine_tuned() -> History:
    """A pretrained 10-class model fine-tuned further: flat at 0.05 from the first step."""
    loss = noisy(np.full(STEPS, 0.05), level=0.01) * np.linspace(1.0, 0.98, STEPS)
    per_step = {"out/classes": constant(**{"": 10.0})}
    return history(loss, optimizer=ADAMW_30X | {"lr": 5e-5}, per_step=per_step)


def gradient_vanished() -> History:
    """Loss 1.0 to 0.9 and flat (no chance level known) while the gradient norm falls a
    thousandfold: a minimum reached, not a plateau."""
    per_step = {"grad/norm_global": global_row(lambda s: 10 ** (-3 * min(s, 150) / 150))}
    return history(noisy(decay(1.0, 0.9, rate=20), 0.002), optimizer=SGD, per_step=per_step)


def ends_above_chance() -> History:
    """Cross-entropy over 10 classes: learns slowly to 1.4, then climbs back above log(10)
    (to 2.6: less than 1.5 times its start, so only the chance level tells)."""
    loss = decay(2.3, 1.0, rate=100)
    loss[120:] = np.linspace(loss[119], 2.6, STEPS - 120)
    loss[200:] = 2.6
    return history(noisy(loss, 0.01), optimizer=SGD, per_step={"out/classes": constant(**{"": 10})})


def flat_at_chance() -> History:
    """Cross-entropy over 10 classes that never leaves log(10)."""
    loss = noisy(np.full(STEPS, math.log(10)), level=0.005)
    return history(loss, optimizer=SGD, per_step={"out/classes": constant(**{"": 10})})


def adamw_spike_then_stall() -> History:
    """AdamW at 30x its best rate on a 50k-token LM: the loss falls from log(vocab), spikes
    at step 80 and stalls far above where it had got to; the weights grew, so the update
    ratio sits under 0.1."""
    loss = decay(10.8, 6.0, steps=80, rate=20)
    loss = np.concatenate([loss, np.full(STEPS - 80, 8.5)])
    loss[80:84] = [9.6, 9.4, 9.1, 8.8]
    per_step = {
        "update/ratio": constant(fc1=0.03, fc2=0.04, fc3=0.02),
        "weight/norm": constant(fc1=30.0, fc2=30.0, fc3=30.0),
        "out/classes": constant(**{"": 50257}),
        "grad/norm": grads(79),
    }
    return history(
        noisy(loss, 0.005), optimizer=ADAMW_30X, layers=MATRICES, per_step=per_step,
        every={"update/ratio": 5, "weight/norm": 5, "out/classes": 10},
    )  # fmt: skip


def gave_back_progress() -> History:
    """AdamW: the loss falls to 3.0, climbs back to 3.5 and idles there for 120 steps, then
    falls again as a cosine schedule brings the rate down; no spike, no divergence."""
    loss = decay(4.2, 3.0, steps=80, rate=15)
    loss = np.concatenate([loss, np.linspace(3.0, 3.5, 20), np.full(120, 3.5),
                           np.linspace(3.5, 2.7, 80)])  # fmt: skip
    return history(noisy(loss, 0.01), optimizer=ADAMW_30X)


def diverging_without_nan() -> History:
    """SGD: the loss falls, then rises steadily far above its start; every value finite."""
    loss = np.concatenate([decay(2.0, 1.0, steps=100, rate=10), np.linspace(1.0, 6.0, 200)])
    return history(noisy(loss, 0.01), optimizer=SGD)


def diverging_gradients() -> History:
    """The loss rises while the gradient norm grows a thousandfold; the steps stay small."""
    loss = np.concatenate([decay(2.0, 1.0, steps=100, rate=10), np.linspace(1.0, 6.0, 200)])
    per_step = {
        "grad/norm_global": global_row(lambda s: 10 ** (3 * s / STEPS)),
        "update/ratio": constant(fc1=1e-3, fc2=1e-3, fc3=1e-3),
        "weight/norm": constant(fc1=5.0, fc2=5.0, fc3=5.0),
    }
    return history(noisy(loss, 0.01), optimizer=SGD, layers=MATRICES, per_step=per_step)


TIED = {
    "encoder": {"params": ["encoder.weight"], "shapes": [[80, 64]], "tied": ["decoder"]},
    "rnn": {"params": ["rnn.weight_ih_l0"], "shapes": [[256, 64]], "tied": []},
    "decoder": {"params": ["decoder.bias"], "shapes": [[80]], "tied": []},
}


def tied_decoder(layout: dict | None = TIED) -> History:
    """Word LM with the decoder's weight tied to the embedding: the decoder owns only its
    bias, which every step moves by a large fraction of its small norm."""
    per_step = {
        "update/ratio": constant(encoder=0.02, rnn=0.01, decoder=0.6),
        "weight/norm": constant(encoder=20.0, rnn=30.0, decoder=2.0),
    }
    manual = {"name": None, "family": "manual", "param_groups": 0}
    return history(noisy(decay(4.4, 1.7)), optimizer=manual, layers=layout, per_step=per_step)


def attention(end_ratio: float, end_logit: float) -> History:
    """Two attention modules whose entropy ratio goes from 0.98 to `end_ratio` and largest
    logit from 0.1 to `end_logit` (geometrically), on a healthy loss."""

    def make(name: str, start: float, end: float) -> Callable[[int], dict[str, float]]:
        def values(step: int) -> dict[str, float]:
            value = start * (end / start) ** (step / (STEPS - 1))
            return {"h.0.attn": value, "h.1.attn": value}

        return values

    per_step = {
        "attn/entropy_ratio": make("ratio", 0.98, end_ratio),
        "attn/logit_max": make("logit", 0.1, end_logit),
    }
    every = {"attn/entropy_ratio": 10, "attn/logit_max": 10}
    return history(noisy(decay(4.2, 1.2)), optimizer=ADAMW_30X, per_step=per_step, every=every)


def residual(last_block: float) -> History:
    """Three blocks' residual RMS: 1 after the first, `last_block` after the last."""
    middle = math.sqrt(last_block)
    per_step = {"resid/norm": constant(**{"h.0": 1.0, "h.1": middle, "h.2": last_block})}
    return history(noisy(decay(4.2, 1.2)), optimizer=ADAMW_30X, per_step=per_step,
                   every={"resid/norm": 10})  # fmt: skip


def tiny_task() -> Task:
    """A 10-class cross-entropy task (only its loss and classes matter here)."""
    x, y = torch.zeros(20, 4), torch.zeros(20, dtype=torch.long)
    return Task("tiny", x, y, x, y, "cross_entropy", "accuracy", (4,), 10)


# -- the table --------------------------------------------------------------------------------

Check = Callable[[list[Finding]], bool]


@dataclass(frozen=True)
class Case:
    """A synthetic run: the kinds it must get, the kinds it must not get, one more check."""

    id: str
    build: Callable[[], History]
    found: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    check: Check | None = None
    task: Callable[[], Task] | None = None
    healthy: bool = field(default=False)


def first(kind: str, findings: list[Finding]) -> Finding:
    return next(f for f in findings if f.kind == kind)


def remedies(findings: list[Finding]) -> set[str]:
    return {r.name for f in findings for r in f.remedies}


CASES = [
    Case("one-spike-that-recovers", spike_that_recovers, healthy=True,
         absent=("learning_rate_too_high", "loss_plateau"),
         check=lambda fs: first("loss_spike", fs).severity == "info"
         and first("loss_spike", fs).steps[0] == 150
         and first("loss_spike", fs).evidence["first_layer"] == "fc2"
         and "raise_learning_rate" not in remedies(fs)),
    Case("spikes-that-recur", spikes_that_recur, found=("loss_spike",),
         absent=("loss_plateau",),
         check=lambda fs: first("loss_spike", fs).evidence["spikes"] == 2),
    Case("smooth-healthy-curve", smooth_healthy, healthy=True),
    Case("converged-fine-tuned-further", converged_fine_tuned, absent=("loss_plateau",)),
    Case("converged-with-task", lambda: history(noisy(np.full(STEPS, 0.05), 0.01)),
         absent=("loss_plateau",), task=tiny_task),
    Case("converged-gradient-vanished", gradient_vanished, absent=("loss_plateau",)),
    Case("flat-gradient-kept", lambda: history(noisy(decay(1.0, 0.9, rate=20), 0.002)),
         found=("loss_plateau",)),
    Case("ends-above-chance", ends_above_chance, found=("learning_rate_too_high",),
         absent=("loss_plateau",),
         check=lambda fs: first("learning_rate_too_high", fs).severity == "critical"
         and "uniform guess" in first("learning_rate_too_high", fs).summary),
    Case("flat-at-chance", flat_at_chance, found=("loss_plateau",),
         check=lambda fs: first("loss_plateau", fs).evidence["at_chance"]),
    Case("adamw-30x-spike-then-stall", adamw_spike_then_stall, found=("learning_rate_too_high",),
         absent=("loss_plateau",),
         check=lambda fs: "AdamW at lr 3e-2" in first("learning_rate_too_high", fs).summary
         and not remedies(fs) & {"momentum", "adaptive_optimizer", "raise_learning_rate"}
         and any("AdamW at lr 3e-2: try 3e-3" in r.reason
                 for r in first("learning_rate_too_high", fs).remedies)),
    Case("gave-back-progress", gave_back_progress, found=("learning_rate_too_high",),
         absent=("loss_spike", "loss_plateau"),
         check=lambda fs: "stayed above" in first("learning_rate_too_high", fs).summary),
    Case("diverging-without-nan", diverging_without_nan, found=("learning_rate_too_high",),
         absent=("loss_plateau", "non_finite"),
         check=lambda fs: first("learning_rate_too_high", fs).severity == "critical"),
    Case("diverging-gradients", diverging_gradients, found=("exploding_gradients",),
         absent=("loss_plateau", "learning_rate_too_high")),
    Case("tied-decoder-bias-only", tied_decoder, absent=("learning_rate_too_high",)),
    Case("tied-decoder-old-history", lambda: tied_decoder(None),
         found=("learning_rate_too_high",)),
    Case("attention-collapse", lambda: attention(0.02, 500.0), found=("attention_collapse",),
         check=lambda fs: "qk_norm" in remedies(fs)),
    Case("attention-healthy", lambda: attention(0.6, 5.0), healthy=True),
    Case("attention-sharp-but-bounded", lambda: attention(0.05, 40.0),
         absent=("attention_collapse",)),
    Case("residual-growth-with-depth", lambda: residual(30.0), found=("residual_growth",),
         check=lambda fs: "layer_norm" in remedies(fs)),
    Case("residual-healthy", lambda: residual(1.8), healthy=True),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_synthetic_run_gets_its_diagnosis(case: Case) -> None:
    findings = diagnose(case.build(), task=case.task() if case.task else None)
    kinds = {f.kind for f in findings if f.severity != "info"}
    if case.healthy:
        assert kinds == set(), [f.summary for f in findings]
    assert set(case.found) <= kinds, [f.summary for f in findings]
    assert not set(case.absent) & {f.kind for f in findings}, [f.summary for f in findings]
    if case.check is not None:
        assert case.check(findings), [(f.summary, f.remedies) for f in findings]


def test_no_optimizer_meta_keeps_the_old_sentences() -> None:
    finding = first("learning_rate_too_high", diagnose(diverging_without_nan_old()))
    assert "rose from" in finding.summary and "(SGD" not in finding.summary


def diverging_without_nan_old() -> History:
    h = diverging_without_nan()
    h.meta = {}
    return h


def test_adaptive_plateau_never_advises_momentum() -> None:
    h = flat_at_chance()
    h.meta["optimizer"] = ADAMW_30X | {"lr": 1e-5}
    found = diagnose(h)
    plateau = first("loss_plateau", found)
    names = [r.name for r in plateau.remedies]
    assert "momentum" not in names and "adaptive_optimizer" not in names
    assert names[0] == "raise_learning_rate" and "AdamW at lr 1e-5: try 1e-4" in (
        plateau.remedies[0].reason
    )


def test_sgd_plateau_still_advises_momentum() -> None:
    names = [r.name for r in first("loss_plateau", diagnose(flat_at_chance())).remedies]
    assert names[:2] == ["momentum", "adaptive_optimizer"]


def test_warmup_and_clipping_in_place_are_not_advised_again() -> None:
    h = adamw_spike_then_stall()
    for step in range(STEPS):  # a logged warm-up, and gradients clipped at 1
        h.log(step, "lr", 3e-2 * min(1.0, (step + 1) / 30))
        h.log(step, "grad/norm_global", 1.0 if step % 3 else 0.5 + step / 1000)
    names = remedies(diagnose(h))
    assert "lr_warmup" not in names and "gradient_clipping" not in names
    assert "lr_warmup" in remedies(diagnose(adamw_spike_then_stall()))


def test_adam_first_step_that_rewrites_the_weights_is_too_high() -> None:
    def ratio(step: int) -> dict[str, float]:
        value = 0.9 if step == 0 else 0.9 / (1 + step)  # falls as the weights grow
        return {"fc1": value, "fc2": value / 2, "fc3": value / 4}

    per_step = {"update/ratio": ratio, "weight/norm": constant(fc1=3.0, fc2=3.0, fc3=3.0)}
    loss = noisy(decay(4.2, 1.2))
    h = history(loss, optimizer=ADAMW_30X, layers=MATRICES, per_step=per_step,
                every={"update/ratio": 5, "weight/norm": 5})  # fmt: skip
    finding = first("learning_rate_too_high", diagnose(h))
    assert finding.evidence["max_update_ratio"] == pytest.approx(0.9)
    assert finding.severity == "warning" and "fc1" in finding.summary
    h.meta["optimizer"] = SGD  # SGD reads the median of the last half: ~0.01, healthy
    assert not [f for f in diagnose(h) if f.kind == "learning_rate_too_high"]
