"""Experiment 16, `lamb-large-batch`: Adam against LAMB as the batch grows, same epochs.

With a fixed number of epochs a larger batch means fewer steps; the usual remedy is a larger
learning rate. LAMB (You et al. 2020) rescales Adam's update of each layer by the trust ratio
||w|| / ||update||, so each layer moves by about lr * ||w|| whatever the gradient's scale,
which is meant to keep large learning rates stable at large batch. We train the same net on
digits with both rules at growing batch sizes, each with lr = base_lr * sqrt(B / B_0) (the
square-root scaling rule LAMB's paper uses; Krizhevsky 2014, Hoffer et al. 2017).
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pandas as pd

from gradsight import data, models
from gradsight.drawing import new_figure
from gradsight.lab.claims import ClaimSpec, judge_all, mean_interval
from gradsight.lab.experiment import Claim, Experiment, Figures, LabConfig, Measured
from gradsight.stats import mean_and_range, mean_spread, values_where
from gradsight.train import fit

BASE_BATCH = 32
# Each rule's base lr at BASE_BATCH (the usual defaults: Adam 1e-3; LAMB 1e-2, its update
# being relative to ||w||).
BASE_LR = {"adam": 1e-3, "lamb": 1e-2}
WIDTH = 64
DEPTH = 3
# Both rules "learn digits" at the smallest batch: test accuracy at least this on every seed.
LEARNED = 0.9
# The interval of LAMB's per-seed accuracy gap over Adam at the largest batch
# (`mean_interval`): a t-interval on 2 seeds crosses 0 and flips the verdict, so the
# percentile bootstrap stays.
GAP_INTERVAL = "bootstrap"

LAMB_BEATS_ADAM = ClaimSpec(
    "lamb-beats-adam",
    "At the largest batch ({batch}, full batch: {epochs} steps) LAMB reaches a higher test "
    "accuracy than Adam, both with square-root lr scaling.",
    rule="the {interval} of the per-seed difference lies above 0",
    central=True,
)
LAMB_LOSES_LESS = ClaimSpec(
    "lamb-loses-less",
    "At the same {epochs} epochs, LAMB loses less accuracy than Adam from batch {small} to "
    "batch {big}.",
    rule="LAMB's mean drop < Adam's",
)
BOTH_LEARN_SMALL = ClaimSpec(
    "both-learn-small",
    "Both rules learn digits at batch {small} (test accuracy >= {learned:g}).",
    rule="every seed of both rules >= {learned:g}",
)


def scaled_lr(rule: str, batch: int) -> float:
    """lr = base_lr * sqrt(batch / BASE_BATCH): the square-root scaling rule."""
    return BASE_LR[rule] * math.sqrt(batch / BASE_BATCH)


def _trial(task, epochs: int, point: tuple[int, str, int]) -> dict:
    """One (batch, rule, seed): its row."""
    batch, rule, seed = point
    model = models.mlp(
        64, 10, depth=DEPTH, width=WIDTH, activation="relu", init="he_normal", seed=seed
    )
    lr = scaled_lr(rule, batch)
    result = fit(
        model,
        task,
        optimizer=rule,
        lr=lr,
        epochs=epochs,
        batch_size=batch,
        seed=seed,
        watch=False,
    )
    return {
        "batch": batch,
        "optimizer": rule,
        "lr": lr,
        "seed": seed,
        "steps": int(result.metrics["steps"]),
        "test_accuracy": float(result.metrics["test_accuracy"]),
        "train_loss": float(result.metrics["train_loss"]),
    }


def measure(config: LabConfig) -> Measured:
    """Both rules at every batch size, the same number of epochs."""
    epochs = config.pick(10, 30)
    task = data.load("digits", seed=0)
    n = len(task.x_train)
    batches = config.pick([BASE_BATCH, 256, n], [BASE_BATCH, 64, 128, 256, 512, n])
    grid = [(b, r, s) for b in batches for r in BASE_LR for s in config.seed_list]
    rows = config.map(partial(_trial, task, epochs), grid, "lamb-large-batch")
    return Measured(
        tables={"runs": pd.DataFrame(rows)},
        params={
            "batches": batches,
            "epochs": epochs,
            "base lr (batch 32)": BASE_LR,
            "lr rule": "base_lr * sqrt(B / 32)",
            "model": f"relu MLP, depth {DEPTH}, width {WIDTH}, He init",
            "seeds": config.seed_list,
            "task": "digits",
        },
    )


def _acc(m: Measured, rule: str, batch: int) -> np.ndarray:
    """Test accuracy of `rule` at `batch`, in seed order."""
    frame = m.tables["runs"].sort_values("seed", kind="stable")
    return values_where(frame, "test_accuracy", optimizer=rule, batch=batch)


def lamb_beats_adam(m: Measured) -> Claim:
    big, epochs = max(m.params["batches"]), m.params["epochs"]
    lamb, adam = _acc(m, "lamb", big), _acc(m, "adam", big)
    label, gap = mean_interval(lamb - adam, GAP_INTERVAL)
    lamb_b, adam_b = mean_spread(lamb), mean_spread(adam)
    return LAMB_BEATS_ADAM.judge(
        gap[0] > 0,
        {"lamb": lamb_b, "adam": adam_b, f"lamb minus adam, {label}": gap},
        f"test accuracy lamb {lamb_b.mean:.3f} vs adam {adam_b.mean:.3f}; difference "
        f"{label} {gap[0]:.3f} to {gap[1]:.3f}",
        batch=big,
        epochs=epochs,
        interval=label,
    )


def lamb_loses_less(m: Measured) -> Claim:
    batches, epochs = m.params["batches"], m.params["epochs"]
    small, big = min(batches), max(batches)
    drop = {r: mean_spread(_acc(m, r, small) - _acc(m, r, big)) for r in BASE_LR}
    return LAMB_LOSES_LESS.judge(
        drop["lamb"].mean < drop["adam"].mean,
        {f"{r} drop": d for r, d in drop.items()},
        ", ".join(f"{r} loses {d.mean:.3f}" for r, d in drop.items()),
        epochs=epochs,
        small=small,
        big=big,
    )


def both_learn_small(m: Measured) -> Claim:
    small = min(m.params["batches"])
    acc = {r: mean_spread(_acc(m, r, small)) for r in BASE_LR}
    return BOTH_LEARN_SMALL.judge(
        min(s.low for s in acc.values()) >= LEARNED,
        acc,
        ", ".join(f"{r} {s.mean:.3f}" for r, s in acc.items()) + f" at batch {small}",
        small=small,
        learned=LEARNED,
    )


CHECKS = (lamb_beats_adam, lamb_loses_less, both_learn_small)


def claims(m: Measured) -> list[Claim]:
    """The claims of `CHECKS`, judged on the measurements."""
    return judge_all(CHECKS, m)


def figures(m: Measured) -> Figures:
    """Test accuracy against the batch size, and the learning rates used."""
    epochs = m.params["epochs"]
    drawn = {
        "accuracy": _accuracy_figure(m.tables["runs"], epochs),
        "lr": _lr_figure(m.params["batches"]),
    }
    captions = {
        "accuracy": f"Test accuracy on digits after {epochs} epochs against the batch size "
        "(mean over seeds, bars: min to max): Adam and LAMB, lr scaled by sqrt(B / 32).",
        "lr": "The learning rate each rule used at each batch size (square-root rule).",
    }
    return drawn, captions


def _accuracy_figure(frame: pd.DataFrame, epochs: int):
    fig = new_figure(None, 7.0, 3.8)
    ax = fig.subplots()
    for i, rule in enumerate(BASE_LR):
        mean, yerr = mean_and_range(
            frame[frame.optimizer == rule].groupby("batch")["test_accuracy"]
        )
        ax.errorbar(
            mean.index,
            mean,
            yerr=yerr,
            fmt="o-",
            color=f"C{i}",
            capsize=3,
            label=rule,
        )
    ax.set(xscale="log", xlabel="batch size", ylabel="test accuracy", title=f"{epochs} epochs")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return fig


def _lr_figure(batches: list[int]):
    fig = new_figure(None, 6.0, 3.4)
    ax = fig.subplots()
    for i, rule in enumerate(BASE_LR):
        ax.plot(batches, [scaled_lr(rule, b) for b in batches], "o-", color=f"C{i}", label=rule)
    ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="learning rate")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return fig


EXPERIMENT = Experiment(
    name="lamb-large-batch",
    title="Adam against LAMB at large batch",
    question=(
        "As the batch grows at a fixed number of epochs, does LAMB keep its accuracy better "
        "than Adam (You et al. 2020)?"
    ),
    measure=measure,
    claims=claims,
    figures=figures,
)
