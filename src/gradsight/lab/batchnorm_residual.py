"""Experiment 4, `batchnorm-residual`: two architectural remedies for a deep net's gradient.

Batch norm re-centres and rescales every layer's pre-activations over the batch, keeping
sigmoid units in their steep middle (Ioffe & Szegedy 2015); a residual block
h + f(h) gives the error an identity path back, dL/dh_l = dL/dh_{l+1} (I + df/dh)
(He et al. 2016). We build a deep sigmoid and a deep ReLU MLP plain, with batch norm, with
residual connections and with both, and measure the gradient ratio at init and the
accuracy after a fixed budget of SGD steps.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from gradsight import data, models
from gradsight.drawing import log_plot, new_figure
from gradsight.lab.claims import ClaimSpec, judge_all
from gradsight.lab.experiment import Claim, Experiment, Figures, LabConfig, Measured
from gradsight.lab.measure import first_last_ratio, preactivation_grad_norms
from gradsight.stats import Spread, spread_where
from gradsight.train import fit

# variant -> (norm, residual)
VARIANTS = {
    "plain": (None, False),
    "batch norm": ("batch", False),
    "residual": (None, True),
    "both": ("batch", True),
}
INITS = {"sigmoid": "xavier_normal", "relu": "he_normal"}
WIDTH = 64
BATCH = 64
LR = 0.1
LEARNED = 0.8
CHANCE = 0.2
# "Orders of magnitude": a remedy must raise the sigmoid net's ratio at least this much.
RAISE = 1e3
# A healthy gradient: the first/last ratio within [1 / RATIO_BAND, RATIO_BAND].
RATIO_BAND = 100.0

RATIO_RAISED = ClaimSpec(
    "ratio-raised",
    "Batch norm and residual connections (alone or together) raise the first/last gradient "
    "ratio of a {depth}-layer sigmoid net by orders of magnitude.",
    rule="each is >= {raise_:.0e} x plain in every seed",
    central=True,
    control="varied: the architecture (plain, batch norm, residual, both); fixed: sigmoid, "
    "Xavier init, depth, width, the batch, seeds (at init)",
)
SIGMOID_LEARNS = ClaimSpec(
    "sigmoid-learns",
    "With either remedy the {depth}-layer sigmoid net learns digits (accuracy >= {learned:g}) "
    "while the plain one stays near chance.",
    rule="every remedied seed >= {learned:g} and every plain seed < {chance:g}",
    central=True,
    control="varied: the architecture (plain, batch norm, residual, both); fixed: sigmoid, "
    "Xavier init, depth, width, SGD rate and batch, steps, seeds",
)
RELU_BATCH_NORM = ClaimSpec(
    "relu-batch-norm",
    "Batch norm (alone or with residual connections) also helps the {depth}-layer ReLU net: "
    "its accuracy exceeds the plain net's.",
    rule="every seed with batch norm beats every plain seed",
    control="varied: the architecture (plain, batch norm, both); fixed: ReLU, He init, depth, "
    "width, SGD rate and batch, steps, seeds",
)
RELU_RESIDUAL = ClaimSpec(
    "relu-residual",
    "Residual connections alone keep the {depth}-layer ReLU net's gradient healthy (ratio "
    "within {low:g} to {high:g}) and its accuracy above the plain net's.",
    rule="every seed's ratio is within [{low:g}, {high:g}] and every seed beats every plain seed",
    control="varied: the architecture (plain against residual); fixed: ReLU, He init, depth, "
    "width, SGD rate and batch, steps, seeds",
    second_look="No confound found: the residual and plain ReLU nets share init, depth, width, "
    "rate and steps, and the gradient ratio is judged at init, before any rate acts. The cause "
    "is the architecture: with He init each block adds a branch as large as its input, so the "
    "variance doubles per block; the remedy that normalises is measured beside it (the "
    "relu-batch-norm claim).",
)


def _trial(task, depth: int, steps: int, point: tuple[str, str, int]) -> tuple[dict, np.ndarray]:
    """One (activation, variant, seed): its row and its gradient flow at init."""
    activation, variant, seed = point
    norm, residual = VARIANTS[variant]
    model = models.mlp(
        64,
        10,
        depth=depth,
        width=WIDTH,
        activation=activation,
        init=INITS[activation],
        norm=norm,
        residual=residual,
        seed=seed,
    )
    x, y = task.x_train[:256], task.y_train[:256]
    norms = preactivation_grad_norms(model, x, y, task.loss_fn)  # train mode: batch stats
    result = fit(
        model,
        task,
        optimizer="sgd",
        lr=LR,
        steps=steps,
        batch_size=BATCH,
        seed=seed,
        watch=False,
    )
    row = {
        "activation": activation,
        "variant": variant,
        "seed": seed,
        "ratio_init": first_last_ratio(norms),
        "test_accuracy": float(result.metrics["test_accuracy"]),
        "diverged": bool(result.metrics["diverged"]),
    }
    return row, norms


def _runs(config: LabConfig, depth: int, steps: int) -> tuple[pd.DataFrame, dict]:
    task = data.load("digits", seed=0)
    grid = [(a, v, s) for a in INITS for v in VARIANTS for s in config.seed_list]
    trials = config.map(partial(_trial, task, depth, steps), grid, "batchnorm-residual")
    flows = {point: norms for point, (_, norms) in zip(grid, trials, strict=True)}
    return pd.DataFrame([row for row, _ in trials]), flows


def measure(config: LabConfig) -> Measured:
    """Every (activation, variant, seed): gradient flow at init, then trained."""
    depth = config.pick(20, 30)
    steps = config.pick(200, 1000)
    frame, flows = _runs(config, depth, steps)
    return Measured(
        tables={"runs": frame},
        params={
            "depth": depth,
            "width": WIDTH,
            "variants": list(VARIANTS),
            "activations (init)": INITS,
            "optimizer": f"sgd lr {LR}, batch {BATCH}",
            "steps": steps,
            "seeds": config.seed_list,
            "task": "digits",
        },
        data={"flows": flows, "seed": config.seed_list[0]},
    )


def _spreads(m: Measured, activation: str, variants, column: str) -> dict[str, Spread]:
    """The spread over seeds of `column` for each variant."""
    frame = m.tables["runs"]
    return {v: spread_where(frame, column, activation=activation, variant=v) for v in variants}


REMEDIES = [v for v in VARIANTS if v != "plain"]


def sigmoid_ratio_raised(m: Measured) -> Claim:
    plain = _spreads(m, "sigmoid", ["plain"], "ratio_init")["plain"]
    remedied = _spreads(m, "sigmoid", REMEDIES, "ratio_init")
    return RATIO_RAISED.judge(
        all(s.low >= RAISE * plain.high for s in remedied.values()),
        {"plain": plain, **remedied},
        f"plain {plain.mean:.1e}; " + ", ".join(f"{v} {s.mean:.2g}" for v, s in remedied.items()),
        depth=m.params["depth"],
        raise_=RAISE,
    )


def sigmoid_learns(m: Measured) -> Claim:
    plain = _spreads(m, "sigmoid", ["plain"], "test_accuracy")["plain"]
    accs = _spreads(m, "sigmoid", REMEDIES, "test_accuracy")
    return SIGMOID_LEARNS.judge(
        plain.high < CHANCE and all(s.low >= LEARNED for s in accs.values()),
        {"plain accuracy": plain, **{f"{v} accuracy": s for v, s in accs.items()}},
        f"after {m.params['steps']} SGD steps: plain {plain.mean:.2f}, "
        + ", ".join(f"{v} {s.mean:.2f}" for v, s in accs.items()),
        depth=m.params["depth"],
        learned=LEARNED,
        chance=CHANCE,
    )


def relu_batch_norm(m: Measured) -> Claim:
    plain = _spreads(m, "relu", ["plain"], "test_accuracy")["plain"]
    bn = _spreads(m, "relu", ["batch norm", "both"], "test_accuracy")
    return RELU_BATCH_NORM.judge(
        all(s.low > plain.high for s in bn.values()),
        {"plain accuracy": plain, **{f"{v} accuracy": s for v, s in bn.items()}},
        f"plain {plain.mean:.2f} vs " + ", ".join(f"{v} {s.mean:.2f}" for v, s in bn.items()),
        depth=m.params["depth"],
    )


def relu_residual(m: Measured) -> Claim:
    ratio = _spreads(m, "relu", ["residual"], "ratio_init")["residual"]
    acc = _spreads(m, "relu", ["residual"], "test_accuracy")["residual"]
    plain = _spreads(m, "relu", ["plain"], "test_accuracy")["plain"]
    frame = m.tables["runs"]
    diverged = frame[(frame.activation == "relu") & (frame.variant == "residual")].diverged
    healthy = ratio.low >= 1 / RATIO_BAND and ratio.high <= RATIO_BAND
    why = (
        ": with He init each block adds a branch as large as its input, so the variance "
        "doubles per block and the net explodes; residual nets need a scaled branch or "
        "normalisation (Hanin & Rolnick 2018; Zhang et al. 2019, Fixup)"
    )
    return RELU_RESIDUAL.judge(
        healthy and acc.low > plain.high,
        {"ratio": ratio, "accuracy": acc, "plain accuracy": plain, "diverged": int(diverged.sum())},
        f"ratio {ratio.mean:.2g}, accuracy {acc.mean:.2f}" + ("" if healthy else why),
        depth=m.params["depth"],
        low=1 / RATIO_BAND,
        high=RATIO_BAND,
    )


CHECKS = (sigmoid_ratio_raised, sigmoid_learns, relu_batch_norm, relu_residual)


def claims(m: Measured) -> list[Claim]:
    """The claims of `CHECKS`, judged on the measurements."""
    return judge_all(CHECKS, m)


def figures(m: Measured) -> Figures:
    """Gradient flow at init, and test accuracy, of every variant."""
    depth, steps, seed = m.params["depth"], m.params["steps"], m.data["seed"]
    drawn = {
        "gradient_flow": _flow_figure(m.data["flows"], depth, seed),
        "accuracy": _accuracy_figure(m.tables["runs"], steps),
    }
    captions = {
        "gradient_flow": f"||dL/dz_l|| per Linear layer at init, relative to the output "
        f"layer's, for the {depth}-layer nets (seed {seed}). The plain sigmoid "
        "net's staircase flattens with batch norm or a residual path.",
        "accuracy": f"Test accuracy on digits after {steps} SGD steps (lr {LR}); bars: mean, "
        "whiskers: min to max over seeds. Chance is 0.1.",
    }
    return drawn, captions


def _flow_figure(flows: dict, depth: int, seed: int):
    fig = new_figure(None, 9.0, 4.0)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, activation in zip(axes, INITS, strict=True):
        for i, variant in enumerate(VARIANTS):
            norms = flows[activation, variant, seed]
            log_plot(
                ax,
                np.arange(1, len(norms) + 1),
                norms / norms[-1],
                "o-",
                ms=3,
                color=f"C{i}",
                label=variant,
            )
        ax.set(yscale="log", title=f"{activation}, depth {depth}", xlabel="Linear layer l")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("||dL/dz_l|| / ||dL/dz_L||")
    axes[1].legend(fontsize="small")
    return fig


def _accuracy_figure(frame: pd.DataFrame, steps: int):
    fig = new_figure(None, 8.0, 3.6)
    ax = fig.subplots()
    width = 0.8 / len(VARIANTS)
    xs = np.arange(len(INITS))
    for i, variant in enumerate(VARIANTS):
        acc = frame[frame.variant == variant].groupby("activation")["test_accuracy"]
        mean = acc.mean().reindex(list(INITS))
        low, high = acc.min().reindex(list(INITS)), acc.max().reindex(list(INITS))
        ax.bar(
            xs + (i - 1.5) * width,
            mean.to_numpy(),
            width,
            color=f"C{i}",
            label=variant,
            yerr=[mean - low, high - mean],
        )
    ax.set_xticks(xs, list(INITS))
    ax.axhline(0.1, color="grey", ls=":", lw=1)
    ax.set(ylim=(0, 1), ylabel="test accuracy", title=f"after {steps} SGD steps")
    ax.legend(fontsize="small", ncols=2)
    return fig


EXPERIMENT = Experiment(
    name="batchnorm-residual",
    title="Batch norm and residual connections",
    question=(
        "Do batch norm and residual connections restore the gradient flow and the training of "
        "deep sigmoid and ReLU nets (Ioffe & Szegedy 2015, He et al. 2016)?"
    ),
    measure=measure,
    claims=claims,
    figures=figures,
)
