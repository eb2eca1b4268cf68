"""Experiment 6, `zero-centered`: why inputs that are all positive make gradients zig-zag.

For a unit z_j = sum_i w_ji x_i + b_j, dL/dw_ji = (dL/dz_j) x_i. When every x_i > 0 (the
outputs of a sigmoid, or raw pixel intensities) all entries of row j share the sign of
dL/dz_j on each example: the row can only move towards all-up or all-down, and reaching a
point that needs mixed signs takes a zig-zag of steps (LeCun et al. 1998,
"Efficient BackProp", sec. 4.3). tanh outputs and standardised inputs are centred at zero.

We train a 2-hidden-layer MLP on digits with sigmoid or tanh units, on raw or standardised
inputs, and measure (a) the sign agreement of each weight-gradient row (the fraction of its
entries that share the majority sign; 1 = all one sign, about 0.5 = mixed), on the layer fed
by the hidden activations and on the layer fed by the inputs; (b) the zig-zag, the path
length sum_t ||W_{t+1} - W_t|| over the displacement ||W_T - W_0|| of those weights; (c) the
loss reached.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from gradsight import data, models
from gradsight.drawing import new_figure
from gradsight.lab.claims import ClaimSpec, judge_all
from gradsight.lab.experiment import Claim, Experiment, Figures, LabConfig, Measured
from gradsight.lab.measure import linear_layers
from gradsight.stats import mean_spread, spread_where, t_interval
from gradsight.train import fit
from gradsight.train.callbacks import Callback, FitState

ACTIVATIONS = ("sigmoid", "tanh")
INPUTS = ("raw", "standardised")
DEPTH = 3  # Linear layers: input -> hidden -> hidden -> output
WIDTH = 64
BATCH = 64
LR = 0.05
# Differences between two conditions are judged on the t-interval of the per-seed
# difference's mean: with 2 seeds a percentile bootstrap would be their range.
LEVEL = 0.95
INTERVAL = f"{LEVEL:.0%} t-interval"
# "Far more often" one-signed: the interval of the agreement's difference lies above this.
AGREEMENT_GAP = 0.1

HIDDEN_ONE_SIGNED = ClaimSpec(
    "hidden-one-signed",
    "Fed by sigmoid outputs (all positive), a unit's weight-gradient entries share one sign "
    "far more often than when fed by tanh outputs.",
    rule="the {interval} of the difference lies above {gap:g}",
    central=True,
)
RAW_ONE_SIGNED = ClaimSpec(
    "raw-inputs-one-signed",
    "Raw pixel inputs (all >= 0) make the first layer's gradient rows one-signed; "
    "standardised inputs do not.",
    rule="the {interval} of the difference lies above {gap:g}",
    central=True,
)
SIGMOID_ZIGZAGS = ClaimSpec(
    "sigmoid-zigzags",
    "The weights fed by sigmoid outputs zig-zag: their path is longer relative to their "
    "displacement than with tanh.",
    rule="the {interval} of the difference lies above 0",
)
CENTRED_IS_FASTER = ClaimSpec(
    "centred-is-faster",
    "Zero-centred is faster: tanh on standardised inputs reaches the lowest training loss of "
    "the four within {steps} SGD steps.",
    rule="tanh on standardised inputs has the lowest mean loss",
)


def sign_agreement(grad: Tensor) -> Tensor:
    """Per row of a weight gradient (out, in): the fraction of entries with the majority sign.

    max(#{g > 0}, #{g < 0}) / #{g != 0}; 1 when the unit's incoming gradient is one-signed.
    """
    pos = (grad > 0).sum(dim=1).float()
    neg = (grad < 0).sum(dim=1).float()
    return torch.maximum(pos, neg) / (pos + neg).clamp(min=1)  # (out,)


class _ZigZag(Callback):
    """Sign agreement of the gradients and the path of the weights of the given layers."""

    def __init__(self, layers: dict[str, nn.Linear]) -> None:
        self.layers = layers
        self.agreement: dict[str, list[float]] = {k: [] for k in layers}
        self.path = dict.fromkeys(layers, 0.0)
        self.start: dict[str, Tensor] = {}
        self.last: dict[str, Tensor] = {}

    def on_fit_start(self, state: FitState) -> None:
        for k, layer in self.layers.items():
            self.start[k] = self.last[k] = layer.weight.detach().clone()

    def on_step_end(self, state: FitState) -> None:
        for k, layer in self.layers.items():
            w = layer.weight.detach()
            if layer.weight.grad is not None:  # the batch gradient of the step just taken
                self.agreement[k].append(float(sign_agreement(layer.weight.grad).mean()))
            self.path[k] += float((w - self.last[k]).norm())
            self.last[k] = w.clone()

    def zigzag(self, k: str) -> float:
        """Path length over displacement (1 for a straight line)."""
        return self.path[k] / max(float((self.last[k] - self.start[k]).norm()), 1e-12)


def _trial(tasks: dict, steps: int, point: tuple[str, str, int]) -> tuple[dict, list[dict]]:
    """One (activation, inputs, seed): its row and its loss curve's rows."""
    activation, inputs, seed = point
    model = models.mlp(
        64,
        10,
        depth=DEPTH,
        width=WIDTH,
        activation=activation,
        init="xavier_normal",
        seed=seed,
    )
    layers = dict(linear_layers(model))
    names = list(layers)
    probe = _ZigZag({"input layer": layers[names[0]], "hidden layer": layers[names[1]]})
    result = fit(
        model,
        tasks[inputs],
        optimizer="sgd",
        lr=LR,
        steps=steps,
        batch_size=BATCH,
        seed=seed,
        watch=False,
        callbacks=[probe],
    )
    loss = result.history.table("loss").iloc[:, 0].to_numpy()
    row = {
        "activation": activation,
        "inputs": inputs,
        "seed": seed,
        "agree_hidden": float(np.mean(probe.agreement["hidden layer"])),
        "agree_input": float(np.mean(probe.agreement["input layer"])),
        "zigzag_hidden": probe.zigzag("hidden layer"),
        "zigzag_input": probe.zigzag("input layer"),
        "final_loss": float(np.mean(loss[-max(steps // 10, 1) :])),
        "test_accuracy": float(result.metrics["test_accuracy"]),
    }
    curve = [
        {"activation": activation, "inputs": inputs, "seed": seed, "step": t, "loss": v}
        for t, v in enumerate(loss)
    ]
    return row, curve


def _runs(config: LabConfig, steps: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    tasks = {
        "raw": data.load("digits", seed=0, standardize=False),
        "standardised": data.load("digits", seed=0),
    }
    grid = [(a, i, s) for a in ACTIVATIONS for i in INPUTS for s in config.seed_list]
    trials = config.map(partial(_trial, tasks, steps), grid, "zero-centered")
    rows = [row for row, _ in trials]
    return pd.DataFrame(rows), pd.DataFrame([r for _, curve in trials for r in curve])


def measure(config: LabConfig) -> Measured:
    """Every (activation, inputs, seed) trained, its gradient signs and path recorded."""
    steps = config.pick(300, 2000)
    frame, curves = _runs(config, steps)
    return Measured(
        tables={"runs": frame, "curves": curves},
        params={
            "activations": list(ACTIVATIONS),
            "inputs": list(INPUTS),
            "net": f"MLP depth {DEPTH}, width {WIDTH}, Xavier init",
            "optimizer": f"sgd lr {LR}, batch {BATCH}",
            "steps": steps,
            "seeds": config.seed_list,
            "task": "digits",
        },
        data={"seed": config.seed_list[0]},
    )


def _compare(m: Measured, column: str, key: str, high: str, low: str, **where) -> dict:
    """Both sides' spreads over seeds, and the per-seed difference `high - low` of `column`
    between two values of `key`, with its t-interval (`INTERVAL`)."""
    frame = m.tables["runs"]
    part = frame[np.logical_and.reduce([frame[k] == v for k, v in where.items()])]
    wide = part.set_index(["seed", key])[column].unstack(key)
    d = (wide[high] - wide[low]).to_numpy()
    return {
        high: spread_where(frame, column, **{key: high}, **where),
        low: spread_where(frame, column, **{key: low}, **where),
        "difference": mean_spread(d),
        INTERVAL: t_interval(d, LEVEL),
    }


def _interval(numbers: dict) -> str:
    low, high = numbers[INTERVAL]
    return f"{INTERVAL} of the difference {low:.2f} to {high:.2f}"


def hidden_one_signed(m: Measured) -> Claim:
    n = _compare(m, "agree_hidden", "activation", "sigmoid", "tanh", inputs="standardised")
    return HIDDEN_ONE_SIGNED.judge(
        n[INTERVAL][0] > AGREEMENT_GAP,
        n,
        f"sign agreement of the hidden layer's gradient rows: sigmoid {n['sigmoid'].mean:.2f}, "
        f"tanh {n['tanh'].mean:.2f}; difference {n['difference'].mean:.2f} ({_interval(n)})",
        interval=INTERVAL,
        gap=AGREEMENT_GAP,
    )


def raw_inputs_one_signed(m: Measured) -> Claim:
    n = _compare(m, "agree_input", "inputs", "raw", "standardised", activation="tanh")
    return RAW_ONE_SIGNED.judge(
        n[INTERVAL][0] > AGREEMENT_GAP,
        n,
        f"sign agreement of the input layer's rows (tanh nets): raw {n['raw'].mean:.2f}, "
        f"standardised {n['standardised'].mean:.2f} ({_interval(n)})",
        interval=INTERVAL,
        gap=AGREEMENT_GAP,
    )


def sigmoid_zigzags(m: Measured) -> Claim:
    n = _compare(m, "zigzag_hidden", "activation", "sigmoid", "tanh", inputs="standardised")
    return SIGMOID_ZIGZAGS.judge(
        n[INTERVAL][0] > 0,
        n,
        f"path / displacement of the hidden layer's weights: sigmoid {n['sigmoid'].mean:.2f}, "
        f"tanh {n['tanh'].mean:.2f} ({_interval(n)})",
        interval=INTERVAL,
    )


def centred_is_faster(m: Measured) -> Claim:
    frame = m.tables["runs"]
    losses = {
        (a, i): spread_where(frame, "final_loss", activation=a, inputs=i)
        for a in ACTIVATIONS
        for i in INPUTS
    }
    best = min(losses, key=lambda k: losses[k].mean)
    return CENTRED_IS_FASTER.judge(
        best == ("tanh", "standardised"),
        {f"{a}, {i}": s for (a, i), s in losses.items()},
        ", ".join(f"{a}/{i} {s.mean:.3f}" for (a, i), s in losses.items())
        + " (mean training loss over the last tenth of the steps)",
        steps=m.params["steps"],
    )


CHECKS = (hidden_one_signed, raw_inputs_one_signed, sigmoid_zigzags, centred_is_faster)


def claims(m: Measured) -> list[Claim]:
    """The claims of `CHECKS`, judged on the measurements."""
    return judge_all(CHECKS, m)


def figures(m: Measured) -> Figures:
    """Sign agreement, the loss curves, and two weights' paths."""
    drawn = {
        "sign_agreement": _agreement_figure(m.tables["runs"]),
        "loss": _loss_figure(m.tables["curves"]),
        "zigzag": _zigzag_figure(m.data["seed"], m.params["steps"]),
    }
    captions = {
        "sign_agreement": "Sign agreement of weight-gradient rows (1: every entry of a unit's "
        "incoming gradient has one sign), averaged over the training steps; dots are seeds.",
        "loss": "Training loss (moving average over 20 steps, mean over seeds) of sigmoid and "
        "tanh nets on raw and standardised digits.",
        "zigzag": "Two weights of one hidden unit, both fed by positive inputs, during "
        "training: the update moves both in the same direction at each step (sigmoid, left), "
        "so the path staircases; with tanh (right) they move freely.",
    }
    return drawn, captions


def _agreement_figure(frame: pd.DataFrame):
    fig = new_figure(None, 8.0, 3.6)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (column, title) in zip(
        axes, [("agree_input", "input layer"), ("agree_hidden", "hidden layer")], strict=True
    ):
        labels = []
        for k, (a, i) in enumerate((a, i) for a in ACTIVATIONS for i in INPUTS):
            values = frame[(frame.activation == a) & (frame.inputs == i)][column]
            ax.bar(
                k, values.mean(), color=f"C{ACTIVATIONS.index(a)}", alpha=0.5 + 0.3 * (i == "raw")
            )
            ax.plot([k] * len(values), values, "k.", ms=4)
            labels.append(f"{a}\n{i}")
        ax.set_xticks(range(len(labels)), labels, fontsize="small")
        ax.set(title=title, ylim=(0.4, 1.0))
        ax.axhline(0.5, color="grey", lw=0.6)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("sign agreement")
    return fig


def _loss_figure(curves: pd.DataFrame):
    fig = new_figure(None, 8.0, 3.6)
    ax = fig.subplots()
    for (a, i), g in curves.groupby(["activation", "inputs"], sort=False):
        mean = g.groupby("step")["loss"].mean().rolling(20, min_periods=1).mean()
        ax.plot(
            mean.index,
            mean,
            color=f"C{ACTIVATIONS.index(a)}",
            ls="-" if i == "standardised" else "--",
            label=f"{a}, {i}",
        )
    ax.set(yscale="log", xlabel="step", ylabel="training loss")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return fig


class _Trace(Callback):
    """The first two incoming weights of a layer's first unit, before and after each step."""

    def __init__(self, layer: nn.Linear) -> None:
        self.layer = layer
        self.points = [layer.weight[0, :2].detach().clone()]

    def on_step_end(self, state: FitState) -> None:
        self.points.append(self.layer.weight[0, :2].detach().clone())


def _zigzag_figure(seed: int, steps: int):
    """The trajectory of two incoming weights of one unit of the hidden layer."""
    task = data.load("digits", seed=0)
    fig = new_figure(None, 8.0, 3.8)
    axes = fig.subplots(1, 2)
    for ax, activation in zip(axes, ACTIVATIONS, strict=True):
        model = models.mlp(
            64, 10, depth=DEPTH, width=WIDTH, activation=activation, init="xavier_normal", seed=seed
        )
        layer = linear_layers(model)[1][1]
        trace = _Trace(layer)

        fit(
            model,
            task,
            optimizer="sgd",
            lr=LR,
            steps=min(steps, 200),
            batch_size=BATCH,
            seed=seed,
            watch=False,
            callbacks=[trace],
        )
        p = torch.stack(trace.points).numpy()  # (steps + 1, 2)
        ax.plot(p[:, 0], p[:, 1], ".-", ms=2, lw=0.8, color=f"C{ACTIVATIONS.index(activation)}")
        ax.plot(*p[0], "ko", ms=4)
        ax.set(title=f"{activation}: w[0, 0] vs w[0, 1]", xlabel="w[0, 0]", ylabel="w[0, 1]")
        ax.grid(alpha=0.3)
    return fig


EXPERIMENT = Experiment(
    name="zero-centered",
    title="Zero-centred activations and inputs",
    question=(
        "Do all-positive inputs to a layer (sigmoid outputs, raw pixels) force one-signed "
        "gradient updates that zig-zag, and do tanh and standardised inputs avoid it (seed "
        "004; LeCun et al. 1998)?"
    ),
    measure=measure,
    claims=claims,
    figures=figures,
)
