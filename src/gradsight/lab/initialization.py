"""Experiment 3, `initialization`: how the initial weights' scale sets the signal's fate.

With n inputs of variance v, a layer W ~ N(0, s^2) gives pre-activations of variance
n s^2 v. tanh near 0 is the identity, so Xavier's s^2 = 2 / (n_in + n_out) keeps v
(Glorot & Bengio 2010); ReLU zeroes half its inputs and keeps half the second moment, so
Xavier halves it at every layer (std x 1/sqrt(2), 2^-15 after 30 layers) and He's
s^2 = 2 / n_in restores it (He et al. 2015). N(0, 0.01) shrinks the signal by
sqrt(n) * 0.01 per layer and N(0, 1) blows it up by sqrt(n / 2).
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pandas as pd
from torch import nn

from gradsight import data, models
from gradsight.drawing import log_plot, new_figure
from gradsight.lab.claims import ClaimSpec, judge_all
from gradsight.lab.experiment import Claim, Experiment, Figures, LabConfig, Measured
from gradsight.lab.measure import output_stds
from gradsight.stats import mean_spread
from gradsight.train import fit

# name -> (gs.models init scheme, its options)
INITS = {
    "N(0, 0.01)": ("normal", {"std": 0.01}),
    "N(0, 1)": ("normal", {"std": 1.0}),
    "xavier": ("xavier_normal", {}),
    "he": ("he_normal", {}),
}
HIDDEN = 30  # hidden layers, so depth = HIDDEN + 1 Linear layers
WIDTH = 128
ACTIVATION_CLASSES = {"tanh": nn.Tanh, "relu": nn.ReLU}
# Training: SGD with momentum 0.9 on digits (plain SGD at lr 0.01 learned too, but its
# accuracy swung between 0.4 and 0.9 from one evaluation to the next); the net "learns" at
# this test accuracy (chance is 0.1).
OPTIMIZER = "momentum"
LR = 0.002
BATCH = 64
LEARNED = 0.7
CHANCE = 0.2
# Xavier with ReLU: every seed's std factor per layer lies in this range (1/sqrt 2 = 0.707),
# and the last layer's std ratio is below XAVIER_LAST_MAX.
XAVIER_FACTOR_RANGE = (0.6, 0.8)
XAVIER_LAST_MAX = 1e-3
# He with ReLU keeps the last layer's std ratio within [1 / HE_BAND, HE_BAND]; Xavier with
# tanh keeps it above 1 / TANH_BAND.
HE_BAND = 4.0
TANH_BAND = 10.0
# The naive scales: the last layer's std ratio below VANISHED, or above EXPLODED.
VANISHED = 1e-10
EXPLODED = 1e10

XAVIER_HALVES = ClaimSpec(
    "xavier-halves",
    "With ReLU, Xavier init halves the variance at every layer: after {hidden} layers the std "
    "is about 2^-{half} of the input's (He et al. 2015).",
    rule="every seed's factor is in [{low:g}, {high:g}] and its ratio < {last_max:g}",
    central=True,
    control="varied: the layer; fixed: ReLU, Xavier init, width, the input batch, seeds (at init)",
)
HE_KEEPS = ClaimSpec(
    "he-keeps",
    "With ReLU, He init keeps the std: at layer {hidden} it is within a factor {band:g} of the "
    "input's.",
    rule="every seed's ratio is in [{low:g}, {band:g}]",
    central=True,
    control="varied: the layer, and the init against Xavier's; fixed: ReLU, width, the input "
    "batch, seeds (at init)",
)
NAIVE_SCALES = ClaimSpec(
    "naive-scales",
    "Naive scales fail both ways: N(0, 0.01) makes the ReLU signal vanish, N(0, 1) makes it "
    "explode.",
    rule="every N(0, 0.01) seed < {vanished:g} and every N(0, 1) seed > {exploded:g}",
    control="varied: the weights' std, N(0, 0.01) and N(0, 1); fixed: ReLU, depth, width, the "
    "input batch, seeds (at init)",
)
TANH_XAVIER = ClaimSpec(
    "tanh-xavier",
    "With tanh, Xavier init keeps the std within a factor {band:g} over {hidden} layers "
    "(Glorot & Bengio 2010).",
    rule="every seed's ratio >= {low:g}",
    control="varied: the layer; fixed: tanh, Xavier init, width, the input batch, seeds (at init)",
)
ONLY_HE_LEARNS = ClaimSpec(
    "only-he-learns",
    "Trained with momentum SGD, the {depth}-layer ReLU net learns digits with He init and "
    "stays at chance with N(0, 0.01), N(0, 1) and Xavier.",
    rule="he >= {learned:g} and the others < {chance:g} in every seed",
    central=True,
    control="varied: the init (He, Xavier, N(0, 0.01), N(0, 1)); fixed: ReLU, depth, width, "
    "momentum SGD rate and batch, steps, seeds",
)


def _stds(config: LabConfig, x) -> pd.DataFrame:
    rows = []
    x_std = float(x.std())
    grid = [(a, i, s) for a in ACTIVATION_CLASSES for i in INITS for s in config.seed_list]
    for activation, init, seed in config.track(grid, "initialization: std"):
        scheme, options = INITS[init]
        model = models.mlp(
            64,
            10,
            depth=HIDDEN + 1,
            width=WIDTH,
            activation=activation,
            init=scheme,
            init_options=options,
            seed=seed,
        )
        stds = output_stds(model, x, ACTIVATION_CLASSES[activation])  # (HIDDEN,)
        rows += [
            {
                "activation": activation,
                "init": init,
                "seed": seed,
                "layer": layer + 1,
                "std": float(std),
                "std_ratio": float(std) / x_std,
            }
            for layer, std in enumerate(stds)
        ]
    return pd.DataFrame(rows)


def _trial(task, steps: int, point: tuple[str, int]) -> tuple[dict, pd.Series]:
    """One (init, seed) of the ReLU net: its row and its loss curve."""
    init, seed = point
    scheme, options = INITS[init]
    model = models.mlp(
        64,
        10,
        depth=HIDDEN + 1,
        width=WIDTH,
        activation="relu",
        init=scheme,
        init_options=options,
        seed=seed,
    )
    result = fit(
        model,
        task,
        optimizer=OPTIMIZER,
        lr=LR,
        steps=steps,
        batch_size=BATCH,
        seed=seed,
        watch=False,
    )
    row = {
        "init": init,
        "seed": seed,
        "test_accuracy": float(result.metrics["test_accuracy"]),
        "diverged": bool(result.metrics["diverged"]),
        "steps": int(result.metrics["steps"]),
    }
    return row, result.history.series("loss")


def _training(config: LabConfig, task, steps: int) -> tuple[pd.DataFrame, dict]:
    grid = [(i, s) for i in INITS for s in config.seed_list]
    trials = config.map(partial(_trial, task, steps), grid, "initialization: training")
    curves = {point: curve for point, (_, curve) in zip(grid, trials, strict=True)}
    return pd.DataFrame([row for row, _ in trials]), curves


def measure(config: LabConfig) -> Measured:
    """Activation stds at init for every (activation, init), and the ReLU net trained."""
    task = data.load("digits", seed=0)
    # A budget, the same in both modes: He reaches 0.84 to 0.91 by step 300 (4 seeds);
    # Xavier starts to move after about 500 steps.
    steps = config.pick(400, 500)
    stds = _stds(config, task.x_train[:256])
    training, curves = _training(config, task, steps)
    return Measured(
        tables={"activation_std": stds, "training": training},
        params={
            "inits": {k: f"{s} {o}" if o else s for k, (s, o) in INITS.items()},
            "hidden layers": HIDDEN,
            "width": WIDTH,
            "steps": steps,
            "optimizer": f"{OPTIMIZER} 0.9, lr {LR}, batch {BATCH}",
            "seeds": config.seed_list,
            "task": "digits (std measured on 256 training images)",
        },
        data={"curves": curves},
    )


def _last(stds: pd.DataFrame, activation: str, init: str) -> pd.Series:
    """The last hidden layer's std relative to the input's, by seed."""
    s = stds[(stds.activation == activation) & (stds.init == init)]
    return s[s.layer == HIDDEN].set_index("seed")["std_ratio"]


def _factor(stds: pd.DataFrame, activation: str, init: str) -> list[float]:
    """Per-layer std factor (std_30 / std_1)^(1/29), one per seed."""
    s = stds[(stds.activation == activation) & (stds.init == init)]
    return [
        (g["std"].iloc[-1] / g["std"].iloc[0]) ** (1 / (HIDDEN - 1)) for _, g in s.groupby("seed")
    ]


def xavier_halves(m: Measured) -> Claim:
    stds = m.tables["activation_std"]
    xf = mean_spread(_factor(stds, "relu", "xavier"))
    xl = mean_spread(_last(stds, "relu", "xavier"))
    low, high = XAVIER_FACTOR_RANGE
    return XAVIER_HALVES.judge(
        xf.low >= low and xf.high <= high and xl.high < XAVIER_LAST_MAX,
        {
            "std factor per layer": xf,
            "1/sqrt(2)": 1 / math.sqrt(2),
            f"std ratio at layer {HIDDEN}": xl,
            f"2^-{HIDDEN // 2}": 2.0 ** -(HIDDEN // 2),
        },
        f"std x{xf.mean:.3f} per layer (1/sqrt 2 = 0.707), layer {HIDDEN} at {xl.mean:.1e} of "
        f"the input (2^-{HIDDEN // 2} = {2.0 ** -(HIDDEN // 2):.1e})",
        hidden=HIDDEN,
        half=HIDDEN // 2,
        low=low,
        high=high,
        last_max=XAVIER_LAST_MAX,
    )


def he_keeps(m: Measured) -> Claim:
    he = _last(m.tables["activation_std"], "relu", "he")
    hs = mean_spread(he)
    return HE_KEEPS.judge(
        bool(((he >= 1 / HE_BAND) & (he <= HE_BAND)).all()),
        {f"std ratio at layer {HIDDEN}": hs},
        f"ratio {hs.mean:.2f} ({hs.low:.2f} to {hs.high:.2f} over seeds)",
        hidden=HIDDEN,
        band=HE_BAND,
        low=1 / HE_BAND,
    )


def naive_scales(m: Measured) -> Claim:
    stds = m.tables["activation_std"]
    small = mean_spread(_last(stds, "relu", "N(0, 0.01)"))
    large = mean_spread(_last(stds, "relu", "N(0, 1)"))
    return NAIVE_SCALES.judge(
        small.high < VANISHED and large.low > EXPLODED,
        {"N(0, 0.01) ratio": small, "N(0, 1) ratio": large},
        f"layer {HIDDEN}: {small.mean:.1e} and {large.mean:.1e} of the input's std",
        vanished=VANISHED,
        exploded=EXPLODED,
    )


def tanh_xavier(m: Measured) -> Claim:
    tx = mean_spread(_last(m.tables["activation_std"], "tanh", "xavier"))
    return TANH_XAVIER.judge(
        tx.low >= 1 / TANH_BAND,
        {f"std ratio at layer {HIDDEN}": tx},
        f"ratio {tx.mean:.3f} ({tx.low:.3f} to {tx.high:.3f} over seeds)",
        hidden=HIDDEN,
        band=TANH_BAND,
        low=1 / TANH_BAND,
    )


def only_he_learns(m: Measured) -> Claim:
    training = m.tables["training"]
    acc = training.groupby("init")["test_accuracy"]
    he_acc = mean_spread(acc.get_group("he"))
    others = {k: mean_spread(acc.get_group(k)) for k in INITS if k != "he"}
    return ONLY_HE_LEARNS.judge(
        he_acc.low >= LEARNED and all(s.high < CHANCE for s in others.values()),
        {
            "he accuracy": he_acc,
            **{f"{k} accuracy": s for k, s in others.items()},
            "diverged (N(0, 1))": int(training[training.init == "N(0, 1)"].diverged.sum()),
        },
        f"after {m.params['steps']} steps (lr {LR}): he {he_acc.mean:.2f}, "
        + ", ".join(f"{k} {s.mean:.2f}" for k, s in others.items()),
        depth=HIDDEN + 1,
        learned=LEARNED,
        chance=CHANCE,
    )


CHECKS = (xavier_halves, he_keeps, naive_scales, tanh_xavier, only_he_learns)


def claims(m: Measured) -> list[Claim]:
    """The claims of `CHECKS`, judged on the measurements."""
    return judge_all(CHECKS, m)


def figures(m: Measured) -> Figures:
    """Activation stds by layer, and the training of the ReLU net under each init."""
    stds, training = m.tables["activation_std"], m.tables["training"]
    drawn = {
        "activation_std": _std_figure(stds),
        "training": _training_figure(training, m.data["curves"]),
    }
    captions = {
        "activation_std": f"Std of each hidden layer's activations at init, relative to the "
        f"input's, for {HIDDEN} layers of width {WIDTH} (mean over seeds). Dashed: 2^(-l/2), "
        "Xavier's halving of the variance per ReLU layer.",
        "training": f"The {HIDDEN + 1}-layer ReLU net trained with momentum SGD (lr {LR}) "
        "under each init: training loss (seed 0) and final test accuracy (mean, min to max "
        "over seeds). N(0, 1) diverges to NaN at once.",
    }
    return drawn, captions


def _std_figure(stds: pd.DataFrame):
    fig = new_figure(None, 9.0, 4.0)
    axes = fig.subplots(1, 2, sharey=True)
    layers = np.arange(1, HIDDEN + 1)
    for ax, activation in zip(axes, ACTIVATION_CLASSES, strict=True):
        sub = stds[stds.activation == activation]
        for i, init in enumerate(INITS):
            mean = sub[sub.init == init].groupby("layer")["std_ratio"].mean()
            log_plot(ax, mean.index, mean.to_numpy(), "o-", ms=3, color=f"C{i}", label=init)
        if activation == "relu":
            ax.plot(layers, 2.0 ** (-layers / 2), "k--", lw=1, label="2^(-l/2)")
        ax.set(yscale="log", title=activation, xlabel="hidden layer l")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("std(h_l) / std(x)")
    axes[1].legend(fontsize="small")
    return fig


def _training_figure(training: pd.DataFrame, curves: dict):
    fig = new_figure(None, 9.0, 3.8)
    left, right = fig.subplots(1, 2, width_ratios=[2, 1])
    for i, init in enumerate(INITS):
        curve = curves[init, min(s for k, s in curves if k == init)]
        left.plot(curve.index, curve.to_numpy(), color=f"C{i}", label=init, lw=1)
    # N(0, 1)'s loss reaches 1e20 and more before turning NaN: cap the axis to keep the rest.
    left.set(xlabel="step", ylabel="training loss", yscale="log", title="loss (seed 0)")
    left.set_ylim(top=1e2)
    left.legend(fontsize="small")
    left.grid(alpha=0.3, which="both")
    acc = training.groupby("init", sort=False)["test_accuracy"]
    mean, low, high = acc.mean(), acc.min(), acc.max()
    xs = np.arange(len(mean))
    right.bar(
        xs,
        mean.to_numpy(),
        color=[f"C{i}" for i in range(len(mean))],
        yerr=[mean - low, high - mean],
    )
    right.set_xticks(xs, list(mean.index), rotation=30, fontsize="small")
    right.axhline(0.1, color="grey", ls=":", lw=1)
    right.set(ylim=(0, 1), title="test accuracy")
    return fig


EXPERIMENT = Experiment(
    name="initialization",
    title="Initialisation: N(0, 0.01), N(0, 1), Xavier and He",
    question=(
        "How does the initial weights' scale carry the signal through 30 tanh or ReLU layers, "
        "and does a 30-layer ReLU net train under each (Glorot & Bengio "
        "2010, He et al. 2015)?"
    ),
    measure=measure,
    claims=claims,
    figures=figures,
)
