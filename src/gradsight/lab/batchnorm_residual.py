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
from gradsight.lab.experiment import Claim, Experiment, ExperimentResult, LabConfig
from gradsight.lab.measure import first_last_ratio, preactivation_grad_norms
from gradsight.stats import mean_spread
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


def run(config: LabConfig) -> ExperimentResult:
    depth = config.pick(20, 30)
    steps = config.pick(300, 1000)
    frame, flows = _runs(config, depth, steps)
    by = frame.set_index(["activation", "variant"]).sort_index()

    def spread(activation: str, variant: str, column: str):
        return mean_spread(by.loc[(activation, variant), column])

    claims = []
    plain = spread("sigmoid", "plain", "ratio_init")
    remedied = {v: spread("sigmoid", v, "ratio_init") for v in VARIANTS if v != "plain"}
    claims.append(
        Claim(
            f"Batch norm and residual connections (alone or together) raise the first/last "
            f"gradient ratio of a {depth}-layer sigmoid net by orders of magnitude.",
            held=all(s.low >= RAISE * plain.high for s in remedied.values()),
            numbers={"plain": plain, **remedied},
            verdict=(
                f"plain {plain.mean:.1e}; "
                + ", ".join(f"{v} {s.mean:.2g}" for v, s in remedied.items())
                + f"; held if each is >= {RAISE:.0e} x plain in every seed."
            ),
            central=True,
        )
    )
    plain_acc = spread("sigmoid", "plain", "test_accuracy")
    accs = {v: spread("sigmoid", v, "test_accuracy") for v in VARIANTS if v != "plain"}
    claims.append(
        Claim(
            f"With either remedy the {depth}-layer sigmoid net learns digits (accuracy >= "
            f"{LEARNED}) while the plain one stays near chance.",
            held=plain_acc.high < CHANCE and all(s.low >= LEARNED for s in accs.values()),
            numbers={"plain accuracy": plain_acc, **{f"{v} accuracy": s for v, s in accs.items()}},
            verdict=(
                f"after {steps} SGD steps: plain {plain_acc.mean:.2f}, "
                + ", ".join(f"{v} {s.mean:.2f}" for v, s in accs.items())
                + "."
            ),
            central=True,
        )
    )
    relu_plain = spread("relu", "plain", "test_accuracy")
    relu_bn = {v: spread("relu", v, "test_accuracy") for v in ("batch norm", "both")}
    claims.append(
        Claim(
            f"Batch norm (alone or with residual connections) also helps the {depth}-layer ReLU "
            "net: its accuracy exceeds the plain net's.",
            held=all(s.low > relu_plain.high for s in relu_bn.values()),
            numbers={
                "plain accuracy": relu_plain,
                **{f"{v} accuracy": s for v, s in relu_bn.items()},
            },
            verdict=(
                f"plain {relu_plain.mean:.2f} vs "
                + ", ".join(f"{v} {s.mean:.2f}" for v, s in relu_bn.items())
                + "; held if every seed with batch norm beats every plain seed."
            ),
        )
    )
    res_ratio = spread("relu", "residual", "ratio_init")
    res_acc = spread("relu", "residual", "test_accuracy")
    claims.append(
        Claim(
            f"Residual connections alone keep the {depth}-layer ReLU net's gradient healthy "
            "(ratio within 1e-2 to 1e2) and its accuracy above the plain net's.",
            held=res_ratio.low >= 1e-2 and res_ratio.high <= 1e2 and res_acc.low > relu_plain.high,
            numbers={
                "ratio": res_ratio,
                "accuracy": res_acc,
                "plain accuracy": relu_plain,
                "diverged": int(by.loc[("relu", "residual"), "diverged"].sum()),
            },
            verdict=(
                f"ratio {res_ratio.mean:.2g}, accuracy {res_acc.mean:.2f}: with He init each block "
                "adds a branch as large as its input, so the variance doubles per block and the "
                "net explodes; residual nets need a scaled branch or normalisation (Hanin & "
                "Rolnick 2018; Zhang et al. 2019, Fixup)."
                if not (res_ratio.low >= 1e-2 and res_ratio.high <= 1e2)
                else f"ratio {res_ratio.mean:.2g}, accuracy {res_acc.mean:.2f}."
            ),
        )
    )

    figures = {
        "gradient_flow": _flow_figure(flows, depth, config.seed_list[0]),
        "accuracy": _accuracy_figure(frame, steps),
    }
    captions = {
        "gradient_flow": f"||dL/dz_l|| per Linear layer at init, relative to the output "
        f"layer's, for the {depth}-layer nets (seed {config.seed_list[0]}). The plain sigmoid "
        "net's staircase flattens with batch norm or a residual path.",
        "accuracy": f"Test accuracy on digits after {steps} SGD steps (lr {LR}); bars: mean, "
        "whiskers: min to max over seeds. Chance is 0.1.",
    }
    return ExperimentResult(
        tables={"runs": frame},
        figures=figures,
        captions=captions,
        claims=claims,
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
    )


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
    run=run,
)
