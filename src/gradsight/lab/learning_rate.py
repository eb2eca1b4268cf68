"""Experiment 12, `learning-rate`: too small, too large, right, and cyclical.

Gradient descent moves w by lr * g: too small a rate barely moves in a step budget, too large
a rate overshoots the valley and the loss stalls or blows up. The LR
range test (Smith 2017, section 3.3) trains briefly while the rate grows exponentially and
suggests a rate on the falling part of the loss curve (`gs.lr_find`, fastai's `valley`). We
train an MLP on digits with SGD at that rate, at a thirtieth of it and at thirty times it,
and compare the fixed rate with Smith's triangular cyclical schedule over [lr, 4 lr]
(his rule of thumb: base_lr = max_lr / 4, the range read on the same test).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from gradsight import data, models
from gradsight.drawing import new_figure
from gradsight.lab.claims import ClaimSpec, judge_all, mean_interval
from gradsight.lab.experiment import Claim, Experiment, Figures, LabConfig, Measured
from gradsight.stats import mean_spread
from gradsight.train import LRFindResult, fit, lr_find

BATCH = 64
FACTOR = 30.0  # "too small" = valley / FACTOR, "too large" = valley * FACTOR
CYCLE_TOP = 4.0  # cyclic: from valley up to CYCLE_TOP * valley (base_fraction 1 / CYCLE_TOP)
CONDITIONS = ("too small", "right", "too large", "cyclic")
# The suggested rate "learns digits": test accuracy above this on every seed.
LEARNED = 0.9
# The interval of the cyclic schedule's per-seed accuracy gap over the fixed rate
# (`mean_interval`): a t-interval on 2 seeds crosses 0 and flips the verdict, so the
# percentile bootstrap stays.
GAP_INTERVAL = "bootstrap"

OFF_RATE_WORSE = ClaimSpec(
    "{condition}-worse",
    "A rate {factor:g} times {direction} than lr_find's suggestion {how}: on every seed its "
    "final training loss is above the suggested rate's after {steps} SGD steps.",
    rule="every seed's loss is above the suggested rate's (a diverged run counts as above)",
    central=True,
    control="varied: the rate (lr_find's suggestion against a multiple of it); fixed: net, "
    "SGD, batch, steps, seeds",
)
SUGGESTION_LEARNS = ClaimSpec(
    "suggestion-learns",
    "The suggested rate learns digits: test accuracy above {learned:g} on every seed.",
    rule="every seed > {learned:g}",
    control="varied: the seed; fixed: lr_find's suggested rate, net, SGD, batch, steps",
)
CYCLIC_BETTER = ClaimSpec(
    "cyclic-better",
    "A triangular cyclical rate between the suggestion and {top:g} times it ends at a higher "
    "test accuracy than the fixed suggestion (Smith 2017).",
    rule="the {interval} of the per-seed gap lies above 0",
    control="varied: the schedule (triangular cyclic from the suggestion up to a multiple of "
    "it, against the fixed suggestion); fixed: net, SGD, batch, steps, seeds",
    second_look="Confound checked, none found: both schedules start from the same lr_find "
    "suggestion and share net, batch, steps and seeds, so neither is favoured by tuning. The "
    "cyclic schedule's larger rates bring no gain that clears the interval at this budget.",
)


def _model(seed: int):
    return models.mlp(64, 10, depth=3, width=64, seed=seed)


def _find(task, seed: int) -> LRFindResult:
    """The LR range test of seed `seed`'s net."""
    return lr_find(_model(seed), task, "sgd", 1e-4, 10.0, 100, batch_size=BATCH, seed=seed)


def _trial(task, steps: int, point: tuple[str, int, float]) -> tuple[dict, np.ndarray]:
    """One (condition, seed, valley): its row and its loss curve."""
    condition, seed, valley = point
    lr, schedule, options = {
        "too small": (valley / FACTOR, "constant", None),
        "right": (valley, "constant", None),
        "too large": (valley * FACTOR, "constant", None),
        "cyclic": (CYCLE_TOP * valley, "cyclic", {"base_fraction": 1 / CYCLE_TOP}),
    }[condition]
    result = fit(
        _model(seed),
        task,
        optimizer="sgd",
        lr=lr,
        steps=steps,
        batch_size=BATCH,
        schedule=schedule,
        schedule_options=options,
        seed=seed,
        watch=False,
    )
    row = {
        "condition": condition,
        "seed": seed,
        "lr": lr,
        "valley": valley,
        "train_loss": float(result.metrics["train_loss"]),
        "test_accuracy": float(result.metrics["test_accuracy"]),
        "diverged": bool(result.metrics["diverged"]),
    }
    return row, result.history.table("loss").iloc[:, 0].to_numpy()


def _runs(config: LabConfig, steps: int):
    task = data.load("digits", seed=0)
    seeds = config.seed_list
    found = config.map(partial(_find, task), seeds, "learning-rate: lr_find")
    finds = dict(zip(seeds, found, strict=True))
    grid = [(c, s, finds[s].valley) for s in seeds for c in CONDITIONS]  # seed-major
    trials = config.map(partial(_trial, task, steps), grid, "learning-rate")
    curves = {(c, s): loss for (c, s, _), (_, loss) in zip(grid, trials, strict=True)}
    return pd.DataFrame([row for row, _ in trials]), curves, finds


def measure(config: LabConfig) -> Measured:
    """Each seed's LR range test, then SGD at the suggestion, around it, and cyclical."""
    steps = config.pick(200, 1500)
    frame, curves, finds = _runs(config, steps)
    return Measured(
        tables={"runs": frame},
        params={
            "model": "mlp depth 3 width 64",
            "task": "digits",
            "optimizer": f"sgd, batch {BATCH}",
            "lr_find": "1e-4 to 10 in 100 steps, valley",
            "factor": FACTOR,
            "cyclic": f"triangular, valley to {CYCLE_TOP:g} x valley, 4 cycles",
            "steps": steps,
            "seeds": config.seed_list,
        },
        data={"curves": curves, "finds": finds},
    )


def _by_seed(m: Measured, column: str) -> pd.DataFrame:
    """`column` by seed (rows) and condition (columns)."""
    return m.tables["runs"].pivot(index="seed", columns="condition", values=column)


def _worse(m: Measured, condition: str, how: str) -> Claim:
    loss, acc = _by_seed(m, "train_loss"), _by_seed(m, "test_accuracy")
    other, right = mean_spread(loss[condition]), mean_spread(loss["right"])
    # A diverged run has no finite final loss; it counts as worse.
    worse = (loss[condition].fillna(np.inf) > loss["right"]).to_numpy()
    frame = m.tables["runs"]
    return OFF_RATE_WORSE.judge(
        bool(worse.all()),
        {
            condition: other,
            "right": right,
            "test accuracy": mean_spread(acc[condition]),
            "diverged runs": int(frame[frame.condition == condition].diverged.sum()),
        },
        f"final training loss {condition} {other.mean:.3g}, right {right.mean:.3g} "
        f"({int(worse.sum())} of {len(worse)} seeds worse)",
        condition=condition.replace(" ", "-"),
        factor=FACTOR,
        direction="smaller" if condition == "too small" else "larger",
        how=how,
        steps=m.params["steps"],
    )


def too_small_worse(m: Measured) -> Claim:
    return _worse(m, "too small", "barely moves")


def too_large_worse(m: Measured) -> Claim:
    return _worse(m, "too large", "overshoots")


def suggestion_learns(m: Measured) -> Claim:
    right = mean_spread(_by_seed(m, "test_accuracy")["right"])
    valleys = mean_spread([f.valley for f in m.data["finds"].values()])
    return SUGGESTION_LEARNS.judge(
        right.low > LEARNED,
        {"test accuracy": right, "suggested lr": valleys},
        f"test accuracy {right.mean:.3f} (min {right.low:.3f}) at lr {valleys.mean:.3g} "
        "(suggested, mean over seeds)",
        learned=LEARNED,
    )


def cyclic_better(m: Measured) -> Claim:
    acc = _by_seed(m, "test_accuracy")
    gap = (acc["cyclic"] - acc["right"]).to_numpy()
    label, (low, high) = mean_interval(gap, GAP_INTERVAL)
    return CYCLIC_BETTER.judge(
        bool(low > 0),
        {
            "cyclic": mean_spread(acc["cyclic"]),
            "fixed": mean_spread(acc["right"]),
            "gap": mean_spread(gap),
            f"gap, {label}": (low, high),
        },
        f"test accuracy gap cyclic - fixed {gap.mean():+.3f} ({label}: {low:+.3f} to "
        f"{high:+.3f}) after {m.params['steps']} steps",
        top=CYCLE_TOP,
        interval=label,
    )


CHECKS = (too_small_worse, too_large_worse, suggestion_learns, cyclic_better)


def claims(m: Measured) -> list[Claim]:
    """The claims of `CHECKS`, judged on the measurements."""
    return judge_all(CHECKS, m)


def figures(m: Measured) -> Figures:
    """The loss curves of every condition, and each seed's range test."""
    drawn = {
        "loss": _loss_figure(m.data["curves"], m.params["seeds"]),
        "lr_find": _find_figure(m.data["finds"]),
    }
    captions = {
        "loss": f"Training loss (batch, smoothed over 10 steps) against step for SGD at lr_find's "
        f"suggestion, {FACTOR:g} times below and above it, and cyclical between the suggestion "
        f"and {CYCLE_TOP:g} times it (mean over seeds, band: min to max).",
        "lr_find": "The LR range test of each seed: smoothed loss against the growing rate, "
        "with the suggested (valley) rate marked.",
    }
    return drawn, captions


def _smooth(x: np.ndarray, k: int = 10) -> np.ndarray:
    return np.convolve(x, np.ones(k) / k, mode="valid") if len(x) >= k else x


def _loss_figure(curves: dict, seeds: list[int]):
    fig = new_figure(None, 7.5, 4.0)
    ax = fig.subplots()
    for i, condition in enumerate(CONDITIONS):
        runs = [_smooth(curves[condition, s]) for s in seeds]
        n = min(len(r) for r in runs)  # a diverged run stops early
        stack = np.stack([r[:n] for r in runs])  # (S, n)
        ax.plot(stack.mean(0), color=f"C{i}", label=condition)
        ax.fill_between(np.arange(n), stack.min(0), stack.max(0), color=f"C{i}", alpha=0.2)
    ax.set(yscale="log", xlabel="step", ylabel="training loss")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return fig


def _find_figure(finds: dict):
    fig = new_figure(None, 6.5, 3.8)
    ax = fig.subplots()
    for i, (seed, found) in enumerate(finds.items()):
        ax.plot(found.lrs, found.losses, color=f"C{i}", label=f"seed {seed}")
        ax.axvline(found.valley, color=f"C{i}", ls="--", lw=0.8)
    ax.set(xscale="log", xlabel="learning rate", ylabel="smoothed loss")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return fig


EXPERIMENT = Experiment(
    name="learning-rate",
    title="Too small, too large, right, and cyclical learning rates",
    question=(
        "Does the rate lr_find suggests beat one thirty times smaller or larger, and does a "
        "cyclical rate beat the fixed one (Smith 2017)?"
    ),
    measure=measure,
    claims=claims,
    figures=figures,
)
