"""Experiment 16, `lamb-large-batch`: Adam against LAMB as the batch grows, same epochs.

With a fixed number of epochs a larger batch means fewer steps; the usual remedy is a larger
learning rate. LAMB (You et al. 2020, "Large Batch Optimization for Deep Learning: Training
BERT in 76 minutes") rescales Adam's update of each layer by the trust ratio
||w|| / ||update||, so each layer moves by about lr * ||w|| whatever the gradient's scale.
The paper's claims are that LAMB keeps its accuracy as the batch grows where Adam loses it,
and that it needs little re-tuning of its rate. One base rate per rule scaled by sqrt(B)
would measure the scaling rule as much as the optimizer, so every (rule, batch) gets its own
best rate from the same log-spaced grid (lowest final training loss averaged over seeds);
we compare the test accuracy at those rates and how far the best rate moves with the batch.
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

RULES = ("adam", "lamb")
BASE_BATCH = 32
# One grid for both rules and every batch, log-spaced by sqrt(10). The full grid spans Adam's
# usual 1e-3 and LAMB's 1e-2 (its step being relative to ||w||) with room on both sides; the
# quick one drops 1e-3, which no (rule, batch) chose on 2 seeds.
QUICK_RATES = (3e-3, 1e-2, 3e-2, 1e-1)
FULL_RATES = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
WIDTH = 64
DEPTH = 3
# Both rules "learn digits" at the smallest batch: test accuracy at least this on every seed.
LEARNED = 0.9
# Intervals of per-seed gaps (`mean_interval`): a t-interval on 2 seeds is too wide to
# decide anything, so the percentile bootstrap stays.
GAP_INTERVAL = "bootstrap"

_CONTROL = (
    "fixed: {epochs} epochs, relu MLP, He init, seeds; each (rule, batch) at its best rate of "
    "{rates}"
)
_TUNED = (
    "The confound of a single base rate scaled by sqrt(B) is controlled here: every rule is "
    "tuned at every batch, and the best rates at batch {big} are LAMB {lamb_lr:g}, Adam "
    "{adam_lr:g}."
)
LAMB_BEATS_ADAM = ClaimSpec(
    "lamb-beats-adam",
    "At the largest batch ({batch}, full batch: {epochs} steps) LAMB reaches a higher test "
    "accuracy than Adam, each at its best rate.",
    rule="the {interval} of the per-seed difference lies above 0",
    central=True,
    control="varied: the rule (LAMB or Adam) at batch {batch}; " + _CONTROL,
    second_look=_TUNED + " Tuned, LAMB does not beat Adam by the rule: {measured_gap}.",
)
LAMB_LOSES_LESS = ClaimSpec(
    "lamb-loses-less",
    "At the same {epochs} epochs, each rule at its best rate at every batch, LAMB's test "
    "accuracy falls less than Adam's from batch {small} to batch {big}.",
    rule="the {interval} of Adam's per-seed fall minus LAMB's lies above 0",
    control="varied: the rule and the batch ({small} to {big}); " + _CONTROL,
    second_look=_TUNED + " Tuned, the falls are LAMB {lamb_drop:.3f}, Adam {adam_drop:.3f} "
    "({interval} of Adam's minus LAMB's {gap_low:.3f} to {gap_high:.3f}).",
)
RATE_MOVES_LESS = ClaimSpec(
    "rate-moves-less",
    "LAMB's best rate moves less than Adam's as the batch grows from {small} to {big} (its "
    "range over the batches spans fewer decades).",
    rule="LAMB's log10(largest / smallest best rate) < Adam's",
    control="varied: the rule and the batch; " + _CONTROL,
    second_look="No confound found beyond the grid's resolution (a factor sqrt(10) between "
    "rates): the best rates span {lamb_span:.2f} decades for LAMB and {adam_span:.2f} for "
    "Adam; LAMB's rate needs {retuning} retuning as the batch grows.",
)
BOTH_LEARN_SMALL = ClaimSpec(
    "both-learn-small",
    "Both rules learn digits at batch {small} (test accuracy >= {learned:g}), each at its best "
    "rate.",
    rule="every seed of both rules >= {learned:g}",
    control="varied: the rule, at batch {small}; " + _CONTROL,
    second_look="No confound found: both rules were tuned on the same grid; {accuracies}.",
)


def _trial(task, epochs: int, point: tuple[int, str, float, int]) -> dict:
    """One (batch, rule, lr, seed): its row."""
    batch, rule, lr, seed = point
    model = models.mlp(
        64, 10, depth=DEPTH, width=WIDTH, activation="relu", init="he_normal", seed=seed
    )
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
    loss = float(result.metrics["train_loss"])
    return {
        "batch": batch,
        "optimizer": rule,
        "lr": lr,
        "seed": seed,
        "steps": int(result.metrics["steps"]),
        "test_accuracy": float(result.metrics["test_accuracy"]),
        "train_loss": loss if math.isfinite(loss) else math.inf,
    }


def best_rates(sweep: pd.DataFrame) -> pd.Series:
    """Per (batch, optimizer): the rate with the lowest final training loss averaged over
    seeds (a diverged run's loss counts as infinite). Test accuracy plays no part."""
    mean = sweep.groupby(["batch", "optimizer", "lr"])["train_loss"].mean()
    return mean.groupby(level=["batch", "optimizer"]).idxmin().map(lambda key: key[2])


def measure(config: LabConfig) -> Measured:
    """Both rules at every batch size and rate of the grid, the same number of epochs."""
    epochs = config.pick(10, 30)
    rates = config.pick(QUICK_RATES, FULL_RATES)
    task = data.load("digits", seed=0)
    n = len(task.x_train)
    batches = config.pick([BASE_BATCH, 256, n], [BASE_BATCH, 64, 128, 256, 512, n])
    grid = [(b, r, lr, s) for b in batches for r in RULES for lr in rates for s in config.seed_list]
    sweep = pd.DataFrame(config.map(partial(_trial, task, epochs), grid, "lamb-large-batch"))
    best = best_rates(sweep)
    at_best = [best[(b, r)] for b, r in zip(sweep.batch, sweep.optimizer, strict=True)]
    runs = sweep[sweep.lr.to_numpy() == np.asarray(at_best)].reset_index(drop=True)
    return Measured(
        tables={"sweep": sweep, "runs": runs},
        params={
            "batches": batches,
            "epochs": epochs,
            "lr grid (both rules, every batch)": list(rates),
            "lr choice": "lowest final training loss, mean over seeds",
            "best lr": {f"{r}, batch {b}": float(best[(b, r)]) for b in batches for r in RULES},
            "model": f"relu MLP, depth {DEPTH}, width {WIDTH}, He init",
            "seeds": config.seed_list,
            "task": "digits",
        },
        data={"best": best, "rates": list(rates)},
    )


def _acc(m: Measured, rule: str, batch: int) -> np.ndarray:
    """Test accuracy of `rule` at `batch`, at its best rate, in seed order."""
    frame = m.tables["runs"].sort_values("seed", kind="stable")
    return values_where(frame, "test_accuracy", optimizer=rule, batch=batch)


def _fields(m: Measured) -> dict:
    """The run values every claim's control and second look name."""
    batches, best = m.params["batches"], m.data["best"]
    big = max(batches)
    return {
        "epochs": m.params["epochs"],
        "rates": ", ".join(f"{r:g}" for r in m.data["rates"]),
        "small": min(batches),
        "big": big,
        "lamb_lr": float(best[(big, "lamb")]),
        "adam_lr": float(best[(big, "adam")]),
    }


def lamb_beats_adam(m: Measured) -> Claim:
    big = max(m.params["batches"])
    lamb, adam = _acc(m, "lamb", big), _acc(m, "adam", big)
    label, gap = mean_interval(lamb - adam, GAP_INTERVAL)
    lamb_b, adam_b = mean_spread(lamb), mean_spread(adam)
    measured = (
        f"test accuracy lamb {lamb_b.mean:.3f} vs adam {adam_b.mean:.3f}; difference "
        f"{label} {gap[0]:.3f} to {gap[1]:.3f}"
    )
    return LAMB_BEATS_ADAM.judge(
        gap[0] > 0,
        {"lamb": lamb_b, "adam": adam_b, f"lamb minus adam, {label}": gap},
        measured,
        batch=big,
        interval=label,
        measured_gap=measured,
        **_fields(m),
    )


def lamb_loses_less(m: Measured) -> Claim:
    f = _fields(m)
    drop = {r: _acc(m, r, f["small"]) - _acc(m, r, f["big"]) for r in RULES}
    label, gap = mean_interval(drop["adam"] - drop["lamb"], GAP_INTERVAL)
    spreads = {r: mean_spread(d) for r, d in drop.items()}
    return LAMB_LOSES_LESS.judge(
        gap[0] > 0,
        {**{f"{r} fall": s for r, s in spreads.items()}, f"adam minus lamb, {label}": gap},
        ", ".join(f"{r} falls {s.mean:.3f}" for r, s in spreads.items())
        + f"; adam minus lamb {label} {gap[0]:.3f} to {gap[1]:.3f}",
        interval=label,
        gap_low=gap[0],
        gap_high=gap[1],
        lamb_drop=spreads["lamb"].mean,
        adam_drop=spreads["adam"].mean,
        **f,
    )


def _span(m: Measured, rule: str) -> tuple[float, list[float]]:
    """log10(largest / smallest best rate) of `rule` over the batches, and the rates."""
    rates = [float(m.data["best"][(b, rule)]) for b in m.params["batches"]]
    return math.log10(max(rates) / min(rates)), rates


def rate_moves_less(m: Measured) -> Claim:
    spans = {r: _span(m, r) for r in RULES}
    text = "; ".join(
        f"{r} best rates {', '.join(f'{x:g}' for x in rates)} ({span:.2f} decades)"
        for r, (span, rates) in spans.items()
    )
    return RATE_MOVES_LESS.judge(
        spans["lamb"][0] < spans["adam"][0],
        {f"{r} decades": span for r, (span, _) in spans.items()},
        text + f" over batches {', '.join(str(b) for b in m.params['batches'])}",
        retuning="more" if spans["lamb"][0] > spans["adam"][0] else "as much",
        lamb_span=spans["lamb"][0],
        adam_span=spans["adam"][0],
        **_fields(m),
    )


def both_learn_small(m: Measured) -> Claim:
    f = _fields(m)
    acc = {r: mean_spread(_acc(m, r, f["small"])) for r in RULES}
    measured = ", ".join(f"{r} {s.mean:.3f} (lowest {s.low:.3f})" for r, s in acc.items())
    return BOTH_LEARN_SMALL.judge(
        min(s.low for s in acc.values()) >= LEARNED,
        acc,
        measured + f" at batch {f['small']}",
        learned=LEARNED,
        accuracies=measured,
        **f,
    )


CHECKS = (lamb_beats_adam, lamb_loses_less, rate_moves_less, both_learn_small)


def claims(m: Measured) -> list[Claim]:
    """The claims of `CHECKS`, judged on the measurements."""
    return judge_all(CHECKS, m)


def figures(m: Measured) -> Figures:
    """Best accuracy and best rate against the batch size, and the whole sweep."""
    epochs = m.params["epochs"]
    drawn = {
        "best": _best_figure(m.tables["runs"], epochs),
        "sweep": _sweep_figure(m.tables["sweep"], m.params["batches"]),
    }
    captions = {
        "best": f"Left: test accuracy on digits after {epochs} epochs against the batch size, "
        "each rule at its best rate at each batch (mean over seeds, bars: min to max). Right: "
        "that best rate (lowest final training loss on the grid); the grey line is the "
        "square-root rule from LAMB's batch-32 rate.",
        "sweep": "Test accuracy against the learning rate at every batch size (mean over "
        "seeds; darker is a larger batch), Adam (left) and LAMB (right).",
    }
    return drawn, captions


def _best_figure(runs: pd.DataFrame, epochs: int):
    fig = new_figure(None, 10.0, 3.8)
    acc_ax, lr_ax = fig.subplots(1, 2)
    for i, rule in enumerate(RULES):
        part = runs[runs.optimizer == rule]
        mean, yerr = mean_and_range(part.groupby("batch")["test_accuracy"])
        acc_ax.errorbar(mean.index, mean, yerr=yerr, fmt="o-", color=f"C{i}", capsize=3, label=rule)
        rate = part.groupby("batch")["lr"].first()
        lr_ax.plot(rate.index, rate, "o-", color=f"C{i}", label=rule)
    rate = runs[runs.optimizer == "lamb"].groupby("batch")["lr"].first()
    batches = rate.index.to_numpy(dtype=float)
    sqrt_rule = rate.iloc[0] * np.sqrt(batches / batches[0])
    lr_ax.plot(batches, sqrt_rule, color="grey", lw=0.8, ls="--", label="sqrt(B) rule")
    acc_ax.set(xscale="log", xlabel="batch size", ylabel="test accuracy", title=f"{epochs} epochs")
    lr_ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="best learning rate")
    for ax in (acc_ax, lr_ax):
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3, which="both")
    return fig


def _sweep_figure(sweep: pd.DataFrame, batches: list[int]):
    fig = new_figure(None, 10.0, 3.8)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, rule in zip(axes, RULES, strict=True):
        for k, batch in enumerate(batches):
            part = sweep[(sweep.optimizer == rule) & (sweep.batch == batch)]
            mean = part.groupby("lr")["test_accuracy"].mean()
            shade = str(0.75 - 0.75 * k / max(len(batches) - 1, 1))
            ax.plot(mean.index, mean, "o-", color=shade, ms=3, label=f"batch {batch}")
        ax.set(xscale="log", xlabel="learning rate", title=rule)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("test accuracy")
    axes[1].legend(fontsize="x-small")
    return fig


EXPERIMENT = Experiment(
    name="lamb-large-batch",
    title="Adam against LAMB at large batch",
    question=(
        "As the batch grows at a fixed number of epochs, each rule tuned at every batch, does "
        "LAMB keep its accuracy and its best rate better than Adam (You et al. 2020)?"
    ),
    measure=measure,
    claims=claims,
    figures=figures,
)
