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
from gradsight.lab.experiment import Claim, Experiment, ExperimentResult, LabConfig
from gradsight.lab.measure import linear_layers
from gradsight.stats import bootstrap_ci, mean_spread
from gradsight.train import fit
from gradsight.train.callbacks import Callback, FitState

ACTIVATIONS = ("sigmoid", "tanh")
INPUTS = ("raw", "standardised")
DEPTH = 3  # Linear layers: input -> hidden -> hidden -> output
WIDTH = 64
BATCH = 64
LR = 0.05


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


def _diff(frame: pd.DataFrame, column: str, key: str, high: str, low: str, where) -> dict:
    """Per-seed difference `high - low` of `column` between two values of `key`."""
    f = frame[where].set_index(["seed", key])[column].unstack(key)
    d = (f[high] - f[low]).to_numpy()
    return {"spread": mean_spread(d), "ci": bootstrap_ci(d)}


def run(config: LabConfig) -> ExperimentResult:
    steps = config.pick(300, 2000)
    frame, curves = _runs(config, steps)
    by = frame.set_index(["activation", "inputs"]).sort_index()
    std = frame.inputs == "standardised"

    claims = []
    d = _diff(frame, "agree_hidden", "activation", "sigmoid", "tanh", std)
    sig, tanh = (mean_spread(by.loc[(a, "standardised"), "agree_hidden"]) for a in ACTIVATIONS)
    claims.append(
        Claim(
            "Fed by sigmoid outputs (all positive), a unit's weight-gradient entries share one "
            "sign far more often than when fed by tanh outputs.",
            held=d["ci"][0] > 0.1,
            numbers={"sigmoid": sig, "tanh": tanh, "difference": d["spread"], "95% CI": d["ci"]},
            verdict=(
                f"sign agreement of the hidden layer's gradient rows: sigmoid {sig.mean:.2f}, "
                f"tanh {tanh.mean:.2f}; difference {d['spread'].mean:.2f} (bootstrap 95% CI "
                f"{d['ci'][0]:.2f} to {d['ci'][1]:.2f}); held if the CI lies above 0.1."
            ),
            central=True,
        )
    )
    d = _diff(frame, "agree_input", "inputs", "raw", "standardised", frame.activation == "tanh")
    raw, stdz = (mean_spread(by.loc[("tanh", i), "agree_input"]) for i in INPUTS)
    claims.append(
        Claim(
            "Raw pixel inputs (all >= 0) make the first layer's gradient rows one-signed; "
            "standardised inputs do not.",
            held=d["ci"][0] > 0.1,
            numbers={
                "raw": raw,
                "standardised": stdz,
                "difference": d["spread"],
                "95% CI": d["ci"],
            },
            verdict=(
                f"sign agreement of the input layer's rows (tanh nets): raw {raw.mean:.2f}, "
                f"standardised {stdz.mean:.2f}; CI of the difference {d['ci'][0]:.2f} to "
                f"{d['ci'][1]:.2f}; held if above 0.1."
            ),
            central=True,
        )
    )
    d = _diff(frame, "zigzag_hidden", "activation", "sigmoid", "tanh", std)
    zs, zt = (mean_spread(by.loc[(a, "standardised"), "zigzag_hidden"]) for a in ACTIVATIONS)
    claims.append(
        Claim(
            "The weights fed by sigmoid outputs zig-zag: their path is longer relative to "
            "their displacement than with tanh.",
            held=d["ci"][0] > 0,
            numbers={"sigmoid": zs, "tanh": zt, "difference": d["spread"], "95% CI": d["ci"]},
            verdict=(
                f"path / displacement of the hidden layer's weights: sigmoid {zs.mean:.2f}, "
                f"tanh {zt.mean:.2f} (CI of the difference {d['ci'][0]:.2f} to "
                f"{d['ci'][1]:.2f}); held if the CI lies above 0."
            ),
        )
    )
    losses = {
        (a, i): mean_spread(by.loc[(a, i), "final_loss"]) for a in ACTIVATIONS for i in INPUTS
    }
    best = min(losses, key=lambda k: losses[k].mean)
    claims.append(
        Claim(
            "Zero-centred is faster: tanh on standardised inputs reaches the lowest training "
            f"loss of the four within {steps} SGD steps.",
            held=best == ("tanh", "standardised"),
            numbers={f"{a}, {i}": s for (a, i), s in losses.items()},
            verdict=", ".join(f"{a}/{i} {s.mean:.3f}" for (a, i), s in losses.items())
            + " (mean training loss over the last tenth of the steps).",
        )
    )

    figures = {
        "sign_agreement": _agreement_figure(frame),
        "loss": _loss_figure(curves),
        "zigzag": _zigzag_figure(config.seed_list[0], steps),
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
    return ExperimentResult(
        tables={"runs": frame, "curves": curves},
        figures=figures,
        captions=captions,
        claims=claims,
        params={
            "activations": list(ACTIVATIONS),
            "inputs": list(INPUTS),
            "net": f"MLP depth {DEPTH}, width {WIDTH}, Xavier init",
            "optimizer": f"sgd lr {LR}, batch {BATCH}",
            "steps": steps,
            "seeds": config.seed_list,
            "task": "digits",
        },
    )


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
    run=run,
)
