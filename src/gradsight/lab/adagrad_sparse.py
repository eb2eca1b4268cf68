"""Experiment 10, `adagrad-sparse`: per-weight step sizes learn the rare features SGD neglects.

On `sparse_features` (Duchi, Hazan & Singer 2011) 50 binary columns fire for 2% of the
examples and name the class for certain; 50 dense N(0, 1) columns are noise. A weight's
gradient is non-zero only on the examples where its feature fires, so one global rate is
either too small for the rare weights or too large for the dense ones. Adagrad divides
each weight's step by sqrt(sum of its squared gradients) and RMSprop by their moving root
mean square (Tieleman & Hinton 2012), so rare weights keep large steps.
A logistic regression is trained by each at its best rate from a small sweep (lowest final
training loss on seed 0); we compare the weights on the rare columns with those on the noise.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import torch

from gradsight import data
from gradsight.drawing import new_figure
from gradsight.lab.claims import ClaimSpec, mean_interval
from gradsight.lab.experiment import Claim, Experiment, Figures, LabConfig, Measured
from gradsight.stats import Spread, mean_spread, spread_where
from gradsight.train import fit

OPTIMIZERS = ("sgd", "adagrad", "rmsprop")
ADAPTIVE = ("adagrad", "rmsprop")
BATCH = 32
N_RARE = 50  # the task's default n_informative: columns 0..49 are the rare ones
# The interval of each adaptive method's per-seed accuracy gap over SGD (`mean_interval`): a
# t-interval on 2 seeds crosses 0 for both and flips their verdicts, so the bootstrap stays.
GAP_INTERVAL = {"adagrad": "bootstrap", "rmsprop": "bootstrap"}

RARE_WEIGHTS = ClaimSpec(
    "rare-weights",
    "Adagrad and RMSprop put far more weight on the rare informative columns relative to the "
    "noise columns than SGD does: every seed's ratio ||w_rare|| / ||w_noise|| is above every "
    "SGD seed's.",
    rule="every adaptive seed's ratio > every SGD seed's",
    central=True,
    control="varied: the optimizer (SGD, Adagrad, RMSprop), each at its best rate of its own "
    "sweep; fixed: the sparse_features task, logistic regression, batch, steps, seeds",
)
RARE_COLUMNS_CLASSIFY = ClaimSpec(
    "rare-columns-classify",
    "The rare columns alone (noise columns zeroed at test time) classify better after Adagrad "
    "or RMSprop than after SGD (mean over seeds).",
    rule="each adaptive method's mean accuracy > SGD's",
    control="varied: the optimizer, each at its best rate of its own sweep; fixed: the task, "
    "logistic regression, batch, steps, seeds; the noise columns zeroed at test time",
    second_look="No confound found: the three rules share task, model, batch, steps and seeds, "
    "each at its best rate. The adaptive rules do weigh the rare columns more (the "
    "rare-weights claim), but a larger weight need not change the predicted class, so the rare "
    "columns alone classify about as well after SGD.",
)
MORE_ACCURATE = ClaimSpec(
    "{optimizer}-more-accurate",
    "{optimizer} reaches a higher test accuracy than SGD, each at its best lr.",
    rule="the {interval} of the per-seed gap lies above 0",
    control="varied: the optimizer against SGD, each at its best rate of its own sweep; fixed: "
    "the task, logistic regression, batch, steps, seeds",
    second_look="No confound found: {optimizer} and SGD share task, model, batch, steps and "
    "seeds, each at its best rate of its own sweep. The larger weight on the rare columns does "
    "not turn into a test accuracy gap whose interval clears 0.",
)


def _sweeps(quick: bool) -> dict[str, list[float]]:
    if quick:
        return {"sgd": [0.1, 0.3, 1.0], "adagrad": [0.03, 0.1, 0.3], "rmsprop": [0.003, 0.01, 0.03]}
    return {
        "sgd": [0.03, 0.1, 0.3, 1.0, 3.0],
        "adagrad": [0.01, 0.03, 0.1, 0.3, 1.0],
        "rmsprop": [0.001, 0.003, 0.01, 0.03, 0.1],
    }


def _train(task, steps: int, point: tuple[str, float, int]) -> dict:
    """One (optimizer, lr, seed): a linear model trained on the task, its row."""
    optimizer, lr, seed = point
    torch.manual_seed(seed)
    model = torch.nn.Linear(task.input_shape[0], task.output_size)
    result = fit(
        model,
        task,
        optimizer=optimizer,
        lr=lr,
        steps=steps,
        batch_size=BATCH,
        seed=seed,
        watch=False,
    )
    with torch.no_grad():
        margin = model.weight[1] - model.weight[0]  # (F,) what each column adds to the logit gap
        x, y = task.x_test, task.y_test
        rare_only = model(torch.cat([x[:, :N_RARE], torch.zeros_like(x[:, N_RARE:])], 1))
        rare_acc = float((rare_only.argmax(1) == y).float().mean())
    rare, noise = float(margin[:N_RARE].norm()), float(margin[N_RARE:].norm())
    return {
        "optimizer": optimizer,
        "lr": lr,
        "seed": seed,
        "train_loss": float(result.metrics["train_loss"]),
        "test_accuracy": float(result.metrics["test_accuracy"]),
        "rare_norm": rare,
        "noise_norm": noise,
        "rare_over_noise": rare / noise,
        "rare_only_accuracy": rare_acc,
    }


def measure(config: LabConfig) -> Measured:
    """The learning-rate sweep on seed 0, then each optimizer at its best lr on every seed."""
    steps = config.pick(200, 1000)
    task = data.load("sparse_features", standardize=False)
    sweeps = _sweeps(config.quick)
    job = partial(_train, task, steps)
    grid = [(o, lr, 0) for o in OPTIMIZERS for lr in sweeps[o]]
    sweep = pd.DataFrame(config.map(job, grid, "adagrad-sparse sweep"))
    best = {
        o: float(sweep.loc[sweep[sweep.optimizer == o].train_loss.idxmin(), "lr"])
        for o in OPTIMIZERS
    }
    rows = [dict(r) for _, r in sweep.iterrows() if r.lr == best[r.optimizer]]
    rest = [(o, best[o], s) for o in OPTIMIZERS for s in config.seed_list if s != 0]
    rows += config.map(job, rest, "adagrad-sparse")
    return Measured(
        tables={"runs": pd.DataFrame(rows), "sweep": sweep},
        params={
            "model": "logistic regression (Linear 100 -> 2)",
            "task": "sparse_features, standardize=False",
            "sweeps": sweeps,
            "best lr": best,
            "batch": BATCH,
            "steps": steps,
            "seeds": config.seed_list,
        },
    )


def _spreads(m: Measured, column: str, optimizers=OPTIMIZERS) -> dict[str, Spread]:
    return {o: spread_where(m.tables["runs"], column, optimizer=o) for o in optimizers}


def rare_weights(m: Measured) -> Claim:
    sgd = _spreads(m, "rare_over_noise", ["sgd"])["sgd"]
    ada = _spreads(m, "rare_over_noise", ADAPTIVE)
    return RARE_WEIGHTS.judge(
        all(s.low > sgd.high for s in ada.values()),
        {"sgd": sgd, **ada, "best lr": m.params["best lr"]},
        f"||w_rare|| / ||w_noise||: sgd {sgd.mean:.1f} (max {sgd.high:.1f}), "
        + ", ".join(f"{o} {s.mean:.1f} (min {s.low:.1f})" for o, s in ada.items())
        + f" after {m.params['steps']} steps at each one's best lr",
    )


def rare_columns_classify(m: Measured) -> Claim:
    sgd = _spreads(m, "rare_only_accuracy", ["sgd"])["sgd"]
    ada = _spreads(m, "rare_only_accuracy", ADAPTIVE)
    return RARE_COLUMNS_CLASSIFY.judge(
        all(s.mean > sgd.mean for s in ada.values()),
        {"sgd": sgd, **ada},
        f"test accuracy from the rare columns only: sgd {sgd.mean:.3f}, "
        + ", ".join(f"{o} {s.mean:.3f}" for o, s in ada.items()),
    )


def more_accurate(m: Measured, optimizer: str) -> Claim:
    acc = m.tables["runs"].pivot(index="seed", columns="optimizer", values="test_accuracy")
    gap = (acc[optimizer] - acc["sgd"]).to_numpy()  # paired: same seed, init and batches
    label, (low, high) = mean_interval(gap, GAP_INTERVAL[optimizer])
    spreads = _spreads(m, "test_accuracy", [optimizer, "sgd"])
    return MORE_ACCURATE.judge(
        bool(low > 0),
        {**spreads, "gap": mean_spread(gap), f"gap, {label}": (low, high)},
        f"mean gap {gap.mean():+.3f} ({label}: {low:+.3f} to {high:+.3f}); the task's best "
        "possible accuracy is 0.820 in expectation",
        optimizer=optimizer,
        interval=label,
    )


def claims(m: Measured) -> list[Claim]:
    """The weights on the rare columns, what they classify, and each adaptive method's gap."""
    return [rare_weights(m), rare_columns_classify(m), *(more_accurate(m, o) for o in ADAPTIVE)]


def figures(m: Measured) -> Figures:
    """The weights on rare against noise columns, and the sweep."""
    drawn = {
        "weights": _weights_figure(m.tables["runs"]),
        "sweep": _sweep_figure(m.tables["sweep"], m.params["best lr"]),
    }
    captions = {
        "weights": "Norm of the logit-gap weights w_1 - w_0 on the 50 rare informative columns "
        "against the 50 noise columns, one point per seed, each optimizer at its best lr: the "
        "adaptive methods sit far above SGD's rare/noise ratio.",
        "sweep": f"The learning-rate sweep on seed 0: final training loss after "
        f"{m.params['steps']} steps (lowest marked) for each optimizer.",
    }
    return drawn, captions


def _weights_figure(frame: pd.DataFrame):
    fig = new_figure(None, 6.0, 4.0)
    ax = fig.subplots()
    for i, o in enumerate(OPTIMIZERS):
        rows = frame[frame.optimizer == o]
        ax.plot(rows.noise_norm, rows.rare_norm, "o", color=f"C{i}", label=o)
    lim = np.array([frame.noise_norm.min() * 0.8, frame.noise_norm.max() * 1.2])
    ax.plot(lim, 10 * lim, ":", color="grey", label="ratio 10")
    ax.set(xscale="log", yscale="log", xlabel="||w_noise||", ylabel="||w_rare||")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return fig


def _sweep_figure(sweep: pd.DataFrame, best: dict[str, float]):
    fig = new_figure(None, 6.5, 3.8)
    ax = fig.subplots()
    for i, o in enumerate(OPTIMIZERS):
        rows = sweep[sweep.optimizer == o].sort_values("lr")
        ax.plot(rows.lr, rows.train_loss, "o-", color=f"C{i}", label=o)
        chosen = rows[rows.lr == best[o]]
        ax.plot(chosen.lr, chosen.train_loss, "*", ms=12, color=f"C{i}")
    ax.set(xscale="log", xlabel="learning rate", ylabel="final training loss")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return fig


EXPERIMENT = Experiment(
    name="adagrad-sparse",
    title="Adagrad and RMSprop on rare features",
    question=(
        "Do Adagrad and RMSprop learn the rare informative features that SGD neglects (seed "
        "003; Duchi, Hazan & Singer 2011)?"
    ),
    measure=measure,
    claims=claims,
    figures=figures,
)
