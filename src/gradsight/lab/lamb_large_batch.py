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

import pandas as pd

from gradsight import data, models
from gradsight.drawing import new_figure
from gradsight.lab.experiment import Claim, Experiment, ExperimentResult, LabConfig
from gradsight.stats import bootstrap_ci, mean_and_range, mean_spread
from gradsight.train import fit

BASE_BATCH = 32
# Each rule's base lr at BASE_BATCH (the usual defaults: Adam 1e-3; LAMB 1e-2, its update
# being relative to ||w||).
BASE_LR = {"adam": 1e-3, "lamb": 1e-2}
WIDTH = 64
DEPTH = 3


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


def run(config: LabConfig) -> ExperimentResult:
    epochs = config.pick(10, 30)
    task = data.load("digits", seed=0)
    n = len(task.x_train)
    batches = config.pick([BASE_BATCH, 256, n], [BASE_BATCH, 64, 128, 256, 512, n])
    grid = [(b, r, s) for b in batches for r in BASE_LR for s in config.seed_list]
    rows = config.map(partial(_trial, task, epochs), grid, "lamb-large-batch")
    frame = pd.DataFrame(rows)

    def acc(rule: str, batch: int):
        part = frame[(frame.optimizer == rule) & (frame.batch == batch)]
        return part.sort_values("seed").test_accuracy.to_numpy()

    big, small = max(batches), min(batches)
    claims = []
    gap = bootstrap_ci(acc("lamb", big) - acc("adam", big))
    lamb_b, adam_b = mean_spread(acc("lamb", big)), mean_spread(acc("adam", big))
    claims.append(
        Claim(
            f"At the largest batch ({big}, full batch: {epochs} steps) LAMB reaches a higher "
            "test accuracy than Adam, both with square-root lr scaling.",
            held=gap[0] > 0,
            numbers={"lamb": lamb_b, "adam": adam_b, "lamb minus adam (95% CI)": gap},
            verdict=(
                f"test accuracy lamb {lamb_b.mean:.3f} vs adam {adam_b.mean:.3f}; difference "
                f"interval {gap[0]:.3f} to {gap[1]:.3f} (held if above 0)."
            ),
            central=True,
        )
    )
    drop = {r: mean_spread(acc(r, small) - acc(r, big)) for r in BASE_LR}
    claims.append(
        Claim(
            f"At the same {epochs} epochs, LAMB loses less accuracy than Adam from batch "
            f"{small} to batch {big}.",
            held=drop["lamb"].mean < drop["adam"].mean,
            numbers={f"{r} drop": d for r, d in drop.items()},
            verdict=", ".join(f"{r} loses {d.mean:.3f}" for r, d in drop.items()) + ".",
        )
    )
    adam_s = mean_spread(acc("adam", small))
    claims.append(
        Claim(
            f"Both rules learn digits at batch {small} (test accuracy >= 0.9).",
            held=min(adam_s.low, mean_spread(acc("lamb", small)).low) >= 0.9,
            numbers={r: mean_spread(acc(r, small)) for r in BASE_LR},
            verdict=", ".join(f"{r} {mean_spread(acc(r, small)).mean:.3f}" for r in BASE_LR)
            + f" at batch {small}.",
        )
    )

    figures = {"accuracy": _accuracy_figure(frame, epochs), "lr": _lr_figure(batches)}
    captions = {
        "accuracy": f"Test accuracy on digits after {epochs} epochs against the batch size "
        "(mean over seeds, bars: min to max): Adam and LAMB, lr scaled by sqrt(B / 32).",
        "lr": "The learning rate each rule used at each batch size (square-root rule).",
    }
    return ExperimentResult(
        tables={"runs": frame},
        figures=figures,
        captions=captions,
        claims=claims,
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
    run=run,
)
