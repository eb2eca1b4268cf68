"""Experiment 6, `zero-centered`: why inputs that are all positive make gradients zig-zag.

For a unit z_j = sum_i w_ji x_i + b_j, dL/dw_ji = (dL/dz_j) x_i. When every x_i > 0 (the
outputs of a sigmoid, or raw pixel intensities) all entries of row j share the sign of
dL/dz_j on each example: the row can only move towards all-up or all-down, and reaching a
point that needs mixed signs takes a zig-zag of steps (LeCun et al. 1998,
"Efficient BackProp", sec. 4.3).

The textbook pairs change more than the centring: tanh's derivative peaks at 1 against
sigmoid's 1/4 (at one rate its steps are up to 4 times larger), and standardising divides
the pixels (0 to 16) by their spread as well as removing their mean. The controlled pairs
change only the mean: sigmoid against sigmoid(z) - 1/2 = tanh(z / 2) / 2 (same derivative,
outputs centred), and pixels scaled to [0, 1] against the same minus their training mean
(same variance). The textbook pairs stay as secondary rows, confounded by scale. Every
condition runs at its own best SGD rate from a log-spaced grid (lowest final training loss
averaged over seeds), so no condition is judged at a rate that suits another.

We train a 2-hidden-layer MLP on digits and measure (a) the sign agreement of each
weight-gradient row (the fraction of its entries that share the majority sign; 1 = all one
sign, about 0.5 = mixed), on the layer fed by the hidden activations and on the layer fed
by the inputs; (b) the zig-zag, the path length sum_t ||W_{t+1} - W_t|| over the
displacement ||W_T - W_0|| of those weights; (c) the loss reached.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from gradsight import data, models
from gradsight.data import Task
from gradsight.drawing import new_figure
from gradsight.lab.claims import ClaimSpec, judge_all
from gradsight.lab.experiment import Claim, Experiment, Figures, LabConfig, Measured
from gradsight.lab.measure import linear_layers
from gradsight.stats import mean_spread, spread_where, t_interval
from gradsight.train import fit
from gradsight.train.callbacks import Callback, FitState

# The controlled 2 x 2 (only the mean of the layer's inputs changes), then the textbook
# pairs, whose members also differ in scale.
CONTROLLED = (
    ("sigmoid", "unit"),
    ("sigmoid", "unit_centred"),
    ("centered_sigmoid", "unit"),
    ("centered_sigmoid", "unit_centred"),
)
CONFOUNDED = (("sigmoid", "standardised"), ("tanh", "standardised"), ("tanh", "raw"))
CONDITIONS = CONTROLLED + CONFOUNDED
NAMES = {
    "sigmoid": "sigmoid",
    "centered_sigmoid": "sigmoid - 1/2",
    "tanh": "tanh",
    "unit": "[0, 1]",
    "unit_centred": "[0, 1] - mean",
    "standardised": "standardised",
    "raw": "raw 0-16",
}
PIXEL_MAX = 16.0  # digits' pixels are integers 0..16
DEPTH = 3  # Linear layers: input -> hidden -> hidden -> output
WIDTH = 64
BATCH = 64
# SGD rates, log-spaced; each condition keeps the one with its lowest mean final loss.
# The full grid reaches past the best rates seen (10), so that each best rate is bracketed;
# the quick one keeps three rates around them. The page names any condition whose best rate
# is at an end of its grid.
QUICK_RATES = (1.0, 3.0, 10.0)
FULL_RATES = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
CURVE_EVERY = 10  # loss curves are kept as means over blocks of this many steps
# Differences between two conditions are judged on the t-interval of the per-seed
# difference's mean: with 2 seeds a percentile bootstrap would be their range.
LEVEL = 0.95
INTERVAL = f"{LEVEL:.0%} t-interval"
# "Far more often" one-signed: the interval of the agreement's difference lies above this.
AGREEMENT_GAP = 0.1

_FIXED = (
    "net, Xavier init, seeds, SGD batch {batch}, {steps} steps; each at its best rate of {rates}"
)
HIDDEN_ONE_SIGNED = ClaimSpec(
    "hidden-one-signed",
    "Fed by sigmoid outputs (all positive), a unit's weight-gradient entries share one sign "
    "far more often than when fed by sigmoid - 1/2 (same derivative, outputs centred).",
    rule="the {interval} of the difference lies above {gap:g}",
    central=True,
    control="varied: the hidden activation, sigmoid against sigmoid - 1/2; fixed: its "
    "derivative, the inputs ([0, 1] - mean), " + _FIXED,
    second_look="No confound left to control: the pair differs only in the outputs' mean. "
    "{controlled}.",
)
INPUTS_ONE_SIGNED = ClaimSpec(
    "inputs-one-signed",
    "Pixels in [0, 1] (all >= 0) make the first layer's gradient rows one-signed; the same "
    "pixels minus their mean (same variance) do not.",
    rule="the {interval} of the difference lies above {gap:g}",
    central=True,
    control="varied: the inputs' mean, [0, 1] against [0, 1] - mean; fixed: their variance, "
    "the activation (sigmoid - 1/2), " + _FIXED,
    second_look="No confound left to control: the pair differs only in the inputs' mean. "
    "{controlled}.",
)
SIGMOID_ZIGZAGS = ClaimSpec(
    "sigmoid-zigzags",
    "The weights fed by sigmoid outputs zig-zag: their path is longer relative to their "
    "displacement than when fed by sigmoid - 1/2 (same derivative).",
    rule="the {interval} of the difference lies above 0",
    control="varied: the hidden activation, sigmoid against sigmoid - 1/2; fixed: its "
    "derivative, the inputs ([0, 1] - mean), " + _FIXED,
    second_look="No confound left in the pair (same derivative, same inputs, each at its best "
    "rate: sigmoid {rate_high:g}, sigmoid - 1/2 {rate_low:g}); path over displacement also "
    "grows with the step size, and at the rates both were run at sigmoid's ratio is the larger "
    "at {shared}. The one-signed gradient rows do not show up as a longer path here.",
)
CENTRED_IS_FASTER = ClaimSpec(
    "centred-is-faster",
    "Zero-centred is faster: sigmoid - 1/2 on pixels minus their mean reaches the lowest "
    "training loss of the controlled four (sigmoid or sigmoid - 1/2, on [0, 1] or [0, 1] - "
    "mean) within {steps} SGD steps, each at its best rate.",
    rule="sigmoid - 1/2 on [0, 1] - mean has the lowest mean loss",
    control="varied: the hidden outputs' mean and the inputs' mean (2 x 2); fixed: the "
    "derivative, the inputs' variance, " + _FIXED,
    second_look="No confound left among the four (same derivative, same input variance, rates "
    "tuned per condition): the lowest loss is {best}'s, {best_loss:.3g} against "
    "{target_loss:.3g}; centring alone does not buy speed once each rate is tuned.",
)
TANH_ONE_SIGNED = ClaimSpec(
    "tanh-one-signed",
    "Confounded by scale: fed by sigmoid outputs, gradient rows share one sign far more often "
    "than when fed by tanh outputs (tanh also has 4 times sigmoid's largest derivative).",
    rule="the {interval} of the difference lies above {gap:g}",
    control="varied: the hidden activation, sigmoid against tanh (outputs' mean and scale, "
    "derivative up to 1/4 against 1); fixed: the inputs (standardised), " + _FIXED,
    second_look="Confound: tanh changes the outputs' scale and the derivative as well as the "
    "mean. Controlled by sigmoid - 1/2: {controlled}.",
)
RAW_ONE_SIGNED = ClaimSpec(
    "raw-inputs-one-signed",
    "Confounded by scale: raw pixels (0 to 16) make the first layer's gradient rows "
    "one-signed; standardised pixels (mean 0, variance 1) do not.",
    rule="the {interval} of the difference lies above {gap:g}",
    control="varied: the inputs, raw against standardised (their mean and their scale); "
    "fixed: the activation (tanh), " + _FIXED,
    second_look="Confound: standardising also divides by the spread. Controlled by [0, 1] "
    "against [0, 1] - mean: {controlled}.",
)
TANH_ZIGZAGS = ClaimSpec(
    "sigmoid-zigzags-vs-tanh",
    "Confounded by scale: the weights fed by sigmoid outputs zig-zag more than with tanh (path "
    "longer relative to displacement).",
    rule="the {interval} of the difference lies above 0",
    control="varied: the hidden activation, sigmoid against tanh (outputs' mean and scale, "
    "derivative); fixed: the inputs (standardised), " + _FIXED,
    second_look="Confound found: tanh's derivative peaks at 1 against sigmoid's 1/4, so at one "
    "rate its steps are up to 4 times larger (each ran at its own best rate: sigmoid "
    "{rate_high:g}, tanh {rate_low:g}), and its outputs have twice the range. Controlled by "
    "sigmoid - 1/2, same derivative: {controlled}; the controlled claim {controlled_verdict}.",
)
TANH_STANDARDISED_FASTER = ClaimSpec(
    "tanh-standardised-faster",
    "Confounded by scale: tanh on standardised pixels reaches a lower training loss within "
    "{steps} SGD steps than sigmoid on standardised pixels and than tanh on raw pixels, each "
    "at its best rate.",
    rule="tanh on standardised inputs has the lowest mean loss of the three",
    control="varied: activation (sigmoid or tanh) and inputs (raw or standardised), each "
    "changing scale with the mean; fixed: " + _FIXED,
    second_look="Confound: tanh and standardising change scale as well as centring. Controlled "
    "2 x 2: the lowest loss is {controlled_best}'s; the controlled claim {controlled_verdict}.",
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


def input_tasks() -> dict[str, Task]:
    """Digits four ways: raw pixels (0..16), standardised per pixel, x / 16 in [0, 1], and
    x / 16 minus its per-pixel training mean (the same variance as [0, 1], mean 0)."""
    raw = data.load("digits", seed=0, standardize=False)
    unit = replace(raw, x_train=raw.x_train / PIXEL_MAX, x_test=raw.x_test / PIXEL_MAX)
    mean = unit.x_train.mean(dim=0)  # (64,)
    centred = replace(unit, x_train=unit.x_train - mean, x_test=unit.x_test - mean)
    standardised = data.load("digits", seed=0)
    return {"raw": raw, "standardised": standardised, "unit": unit, "unit_centred": centred}


def _model(activation: str, seed: int) -> nn.Module:
    return models.mlp(
        64, 10, depth=DEPTH, width=WIDTH, activation=activation, init="xavier_normal", seed=seed
    )


def _final_loss(loss: np.ndarray, steps: int) -> float:
    """Mean training loss over the last tenth of the steps; inf if training diverged."""
    if len(loss) < steps or not np.all(np.isfinite(loss)):
        return float("inf")
    return float(np.mean(loss[-max(steps // 10, 1) :]))


def _trial(tasks: dict, steps: int, point: tuple) -> tuple[dict, list[dict]]:
    """One (activation, inputs, lr, seed): its row and its loss curve's rows."""
    activation, inputs, lr, seed = point
    model = _model(activation, seed)
    layers = dict(linear_layers(model))
    names = list(layers)
    probe = _ZigZag({"input layer": layers[names[0]], "hidden layer": layers[names[1]]})
    result = fit(
        model,
        tasks[inputs],
        optimizer="sgd",
        lr=lr,
        steps=steps,
        batch_size=BATCH,
        seed=seed,
        watch=False,
        callbacks=[probe],
    )
    loss = result.history.table("loss").iloc[:, 0].to_numpy()
    key = {"activation": activation, "inputs": inputs, "lr": lr, "seed": seed}
    row = {
        **key,
        "agree_hidden": float(np.mean(probe.agreement["hidden layer"])),
        "agree_input": float(np.mean(probe.agreement["input layer"])),
        "zigzag_hidden": probe.zigzag("hidden layer"),
        "zigzag_input": probe.zigzag("input layer"),
        "final_loss": _final_loss(loss, steps),
        "test_accuracy": float(result.metrics["test_accuracy"]),
    }
    blocks = len(loss) // CURVE_EVERY
    means = loss[: blocks * CURVE_EVERY].reshape(blocks, CURVE_EVERY).mean(axis=1)
    curve = [{**key, "step": (b + 1) * CURVE_EVERY, "loss": v} for b, v in enumerate(means)]
    return row, curve


def best_rates(sweep: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Per (activation, inputs): the rate whose final training loss, averaged over seeds, is
    lowest (a diverged run's loss counts as infinite)."""
    mean = sweep.groupby(["activation", "inputs", "lr"])["final_loss"].mean()
    return {(a, i): float(mean.loc[(a, i)].idxmin()) for a, i in CONDITIONS}


def _at_best(frame: pd.DataFrame, best: dict[tuple[str, str], float]) -> pd.DataFrame:
    """The rows of `frame` run at their condition's best rate."""
    rate = [best[(a, i)] for a, i in zip(frame.activation, frame.inputs, strict=True)]
    return frame[frame.lr.to_numpy() == np.asarray(rate)].reset_index(drop=True)


def measure(config: LabConfig) -> Measured:
    """Every (condition, rate, seed) trained; each condition measured at its best rate."""
    steps = config.pick(300, 2000)
    rates = config.pick(QUICK_RATES, FULL_RATES)
    grid = [(a, i, r, s) for a, i in CONDITIONS for r in rates for s in config.seed_list]
    trials = config.map(partial(_trial, input_tasks(), steps), grid, "zero-centered")
    sweep = pd.DataFrame([row for row, _ in trials])
    curves = pd.DataFrame([r for _, curve in trials for r in curve])
    best = best_rates(sweep)
    return Measured(
        tables={"sweep": sweep, "runs": _at_best(sweep, best), "curves": _at_best(curves, best)},
        params={
            "controlled": [f"{NAMES[a]}, {NAMES[i]}" for a, i in CONTROLLED],
            "confounded by scale": [f"{NAMES[a]}, {NAMES[i]}" for a, i in CONFOUNDED],
            "best lr": {f"{NAMES[a]}, {NAMES[i]}": best[(a, i)] for a, i in CONDITIONS},
            "best lr at an end of the grid": [
                f"{NAMES[a]}, {NAMES[i]}"
                for a, i in CONDITIONS
                if best[(a, i)] in (rates[0], rates[-1])
            ]
            or "none",
            "net": f"MLP depth {DEPTH}, width {WIDTH}, Xavier init",
            "optimizer": f"sgd, batch {BATCH}, lr from {list(rates)} (lowest mean final loss)",
            "steps": steps,
            "seeds": config.seed_list,
            "task": "digits",
        },
        data={"seed": config.seed_list[0], "best": best, "rates": list(rates)},
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


def _pair(n: dict, high: str, low: str, what: str) -> str:
    """ "WHAT: HIGH a, LOW b (interval)" from `_compare`'s numbers."""
    return (
        f"{what}: {NAMES[high]} {n[high].mean:.2f}, {NAMES[low]} {n[low].mean:.2f} ({_interval(n)})"
    )


def _fields(m: Measured) -> dict:
    """The fields every control line names."""
    rates = ", ".join(f"{r:g}" for r in m.data["rates"])
    return {"batch": BATCH, "steps": m.params["steps"], "rates": rates, "interval": INTERVAL}


def _activation_pair(m: Measured, column: str, other: str) -> dict:
    inputs = "unit_centred" if other == "centered_sigmoid" else "standardised"
    return _compare(m, column, "activation", "sigmoid", other, inputs=inputs)


def _input_pair(m: Measured, controlled: bool) -> dict:
    if controlled:
        return _compare(
            m, "agree_input", "inputs", "unit", "unit_centred", activation="centered_sigmoid"
        )
    return _compare(m, "agree_input", "inputs", "raw", "standardised", activation="tanh")


HIDDEN_AGREEMENT = "sign agreement of the hidden layer's gradient rows"
INPUT_AGREEMENT = "sign agreement of the input layer's gradient rows"


def hidden_one_signed(m: Measured) -> Claim:
    n = _activation_pair(m, "agree_hidden", "centered_sigmoid")
    text = _pair(n, "sigmoid", "centered_sigmoid", HIDDEN_AGREEMENT)
    return HIDDEN_ONE_SIGNED.judge(
        n[INTERVAL][0] > AGREEMENT_GAP, n, text, controlled=text, gap=AGREEMENT_GAP, **_fields(m)
    )


def inputs_one_signed(m: Measured) -> Claim:
    n = _input_pair(m, controlled=True)
    text = _pair(n, "unit", "unit_centred", INPUT_AGREEMENT + " (sigmoid - 1/2 nets)")
    return INPUTS_ONE_SIGNED.judge(
        n[INTERVAL][0] > AGREEMENT_GAP, n, text, controlled=text, gap=AGREEMENT_GAP, **_fields(m)
    )


def tanh_one_signed(m: Measured) -> Claim:
    n = _activation_pair(m, "agree_hidden", "tanh")
    controlled = _pair(
        _activation_pair(m, "agree_hidden", "centered_sigmoid"),
        "sigmoid",
        "centered_sigmoid",
        HIDDEN_AGREEMENT,
    )
    return TANH_ONE_SIGNED.judge(
        n[INTERVAL][0] > AGREEMENT_GAP,
        n,
        _pair(n, "sigmoid", "tanh", HIDDEN_AGREEMENT),
        controlled=controlled,
        gap=AGREEMENT_GAP,
        **_fields(m),
    )


def raw_inputs_one_signed(m: Measured) -> Claim:
    n = _input_pair(m, controlled=False)
    controlled = _pair(_input_pair(m, controlled=True), "unit", "unit_centred", INPUT_AGREEMENT)
    return RAW_ONE_SIGNED.judge(
        n[INTERVAL][0] > AGREEMENT_GAP,
        n,
        _pair(n, "raw", "standardised", INPUT_AGREEMENT + " (tanh nets)"),
        controlled=controlled,
        gap=AGREEMENT_GAP,
        **_fields(m),
    )


def _zigzag_pair(m: Measured, other: str) -> dict:
    return _activation_pair(m, "zigzag_hidden", other)


def _shared_rates(m: Measured) -> str:
    """At how many rates of the grid, both runs finite, sigmoid's mean zig-zag exceeds
    sigmoid - 1/2's (both on [0, 1] - mean inputs)."""
    sweep = m.tables["sweep"]
    part = sweep[(sweep.inputs == "unit_centred") & np.isfinite(sweep.final_loss)]
    mean = part.groupby(["lr", "activation"])["zigzag_hidden"].mean().unstack("activation")
    mean = mean[["sigmoid", "centered_sigmoid"]].dropna()
    larger = int((mean["sigmoid"] > mean["centered_sigmoid"]).sum())
    return f"{larger} of {len(mean)} rates"


def sigmoid_zigzags(m: Measured) -> Claim:
    n = _zigzag_pair(m, "centered_sigmoid")
    best = m.data["best"]
    return SIGMOID_ZIGZAGS.judge(
        n[INTERVAL][0] > 0,
        n,
        _pair(
            n, "sigmoid", "centered_sigmoid", "path / displacement of the hidden layer's weights"
        ),
        rate_high=best[("sigmoid", "unit_centred")],
        rate_low=best[("centered_sigmoid", "unit_centred")],
        shared=_shared_rates(m),
        **_fields(m),
    )


def _verdict(held: bool) -> str:
    return "holds" if held else "fails as well"


def sigmoid_zigzags_vs_tanh(m: Measured) -> Claim:
    n = _zigzag_pair(m, "tanh")
    controlled = _zigzag_pair(m, "centered_sigmoid")
    best = m.data["best"]
    what = "path / displacement of the hidden layer's weights"
    return TANH_ZIGZAGS.judge(
        n[INTERVAL][0] > 0,
        n,
        _pair(n, "sigmoid", "tanh", what),
        controlled=_pair(controlled, "sigmoid", "centered_sigmoid", what),
        controlled_verdict=_verdict(controlled[INTERVAL][0] > 0),
        rate_high=best[("sigmoid", "standardised")],
        rate_low=best[("tanh", "standardised")],
        **_fields(m),
    )


def _losses(m: Measured, conditions: tuple) -> dict[tuple[str, str], object]:
    """Final training loss over seeds, per condition (each at its best rate)."""
    frame = m.tables["runs"]
    return {
        (a, i): spread_where(frame, "final_loss", activation=a, inputs=i) for a, i in conditions
    }


def _label(condition: tuple[str, str]) -> str:
    return f"{NAMES[condition[0]]} on {NAMES[condition[1]]}"


def _loss_text(losses: dict) -> str:
    return ", ".join(f"{_label(k)} {s.mean:.3g}" for k, s in losses.items()) + (
        " (mean training loss over the last tenth of the steps, each at its best rate)"
    )


def centred_is_faster(m: Measured) -> Claim:
    losses = _losses(m, CONTROLLED)
    target = ("centered_sigmoid", "unit_centred")
    best = min(losses, key=lambda k: losses[k].mean)
    return CENTRED_IS_FASTER.judge(
        best == target,
        {_label(k): s for k, s in losses.items()},
        _loss_text(losses),
        best=_label(best),
        best_loss=losses[best].mean,
        target_loss=losses[target].mean,
        **_fields(m),
    )


def tanh_standardised_faster(m: Measured) -> Claim:
    losses = _losses(m, CONFOUNDED)
    best = min(losses, key=lambda k: losses[k].mean)
    controlled = _losses(m, CONTROLLED)
    controlled_best = min(controlled, key=lambda k: controlled[k].mean)
    return TANH_STANDARDISED_FASTER.judge(
        best == ("tanh", "standardised"),
        {_label(k): s for k, s in losses.items()},
        _loss_text(losses),
        controlled_best=_label(controlled_best),
        controlled_verdict=_verdict(controlled_best == ("centered_sigmoid", "unit_centred")),
        **_fields(m),
    )


CHECKS = (
    hidden_one_signed,
    inputs_one_signed,
    sigmoid_zigzags,
    centred_is_faster,
    tanh_one_signed,
    raw_inputs_one_signed,
    sigmoid_zigzags_vs_tanh,
    tanh_standardised_faster,
)


def claims(m: Measured) -> list[Claim]:
    """The claims of `CHECKS`, judged on the measurements: the controlled pairs first."""
    return judge_all(CHECKS, m)


def figures(m: Measured) -> Figures:
    """Sign agreement, the loss curves, the rate sweep, and two weights' paths."""
    drawn = {
        "sign_agreement": _agreement_figure(m.tables["runs"]),
        "loss": _loss_figure(m.tables["curves"], m.data["best"]),
        "lr_sweep": _sweep_figure(m.tables["sweep"], m.data["best"]),
        "zigzag": _zigzag_figure(m.data["seed"], m.params["steps"], m.data["best"]),
    }
    captions = {
        "sign_agreement": "Sign agreement of weight-gradient rows (1: every entry of a unit's "
        "incoming gradient has one sign), averaged over the training steps, each condition at "
        "its best rate; dots are seeds. Left of the line the controlled conditions (only the "
        "mean changes), right of it the textbook pairs, confounded by scale (hatched).",
        "loss": "Training loss (mean over seeds, means over blocks of "
        f"{CURVE_EVERY} steps), each condition at its best rate (in the legend): the "
        "controlled 2 x 2 (left) and the textbook pairs (right).",
        "lr_sweep": "Final training loss against the SGD rate (mean over seeds; a missing "
        "point diverged); the ring marks each condition's best rate, the one it is measured at.",
        "zigzag": "Two weights of one hidden unit during training, fed by sigmoid (left) and by "
        "sigmoid - 1/2 (right), same derivative, on [0, 1] - mean inputs, each at its best "
        "rate: with positive inputs the two weights tend to move in the same direction.",
    }
    return drawn, captions


def _bar_style(activation: str, inputs: str) -> dict:
    confounded = (activation, inputs) in CONFOUNDED
    colour = f"C{['sigmoid', 'centered_sigmoid', 'tanh'].index(activation)}"
    alpha = 0.85 if inputs in ("unit", "raw") else 0.5
    return {"color": colour, "alpha": alpha, "hatch": "//" if confounded else None}


def _agreement_figure(frame: pd.DataFrame):
    fig = new_figure(None, 10.0, 4.0)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (column, title) in zip(
        axes, [("agree_input", "input layer"), ("agree_hidden", "hidden layer")], strict=True
    ):
        for k, (a, i) in enumerate(CONDITIONS):
            values = frame[(frame.activation == a) & (frame.inputs == i)][column]
            ax.bar(k, values.mean(), **_bar_style(a, i))
            ax.plot([k] * len(values), values, "k.", ms=4)
        labels = [f"{NAMES[a]}\n{NAMES[i]}" for a, i in CONDITIONS]
        ax.set_xticks(range(len(labels)), labels, fontsize="x-small", rotation=60)
        ax.axvline(len(CONTROLLED) - 0.5, color="grey", lw=0.8, ls="--")
        ax.set(title=title, ylim=(0.4, 1.0))
        ax.axhline(0.5, color="grey", lw=0.6)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("sign agreement")
    return fig


def _condition_panels(draw, ylabel: str, **axes_set):
    """Two panels, the controlled conditions and those confounded by scale; `draw(ax, a, i,
    style)` draws one condition (solid: centred inputs, dashed: all-positive ones)."""
    fig = new_figure(None, 10.0, 3.8)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, group, title in zip(
        axes, (CONTROLLED, CONFOUNDED), ("controlled", "confounded by scale"), strict=True
    ):
        for a, i in group:
            dashed = i in ("unit", "raw")
            draw(ax, a, i, {"color": _bar_style(a, i)["color"], "ls": "--" if dashed else "-"})
        ax.set(title=title, **axes_set)
        ax.legend(fontsize="x-small")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel(ylabel)
    return fig


def _loss_figure(curves: pd.DataFrame, best: dict):
    def draw(ax, a, i, style):
        mean = curves[(curves.activation == a) & (curves.inputs == i)].groupby("step")["loss"]
        mean = mean.mean()
        ax.plot(mean.index, mean, **style, label=f"{_label((a, i))}, lr {best[(a, i)]:g}")

    return _condition_panels(draw, "training loss", yscale="log", xlabel="step")


def _sweep_figure(sweep: pd.DataFrame, best: dict):
    finite = sweep.replace([np.inf], np.nan)

    def draw(ax, a, i, style):
        g = finite[(finite.activation == a) & (finite.inputs == i)]
        mean = g.groupby("lr")["final_loss"].mean()
        ax.plot(mean.index, mean, "o", **style, ms=3, label=_label((a, i)))
        ax.plot(best[(a, i)], mean.get(best[(a, i)], np.nan), "o", mfc="none", mec="k", ms=9)

    return _condition_panels(
        draw, "final training loss", xscale="log", yscale="log", xlabel="SGD learning rate"
    )


class _Trace(Callback):
    """The first two incoming weights of a layer's first unit, before and after each step."""

    def __init__(self, layer: nn.Linear) -> None:
        self.layer = layer
        self.points = [layer.weight[0, :2].detach().clone()]

    def on_step_end(self, state: FitState) -> None:
        self.points.append(self.layer.weight[0, :2].detach().clone())


def _zigzag_figure(seed: int, steps: int, best: dict):
    """The trajectory of two incoming weights of one unit of the hidden layer."""
    task = input_tasks()["unit_centred"]
    fig = new_figure(None, 8.0, 3.8)
    axes = fig.subplots(1, 2)
    for k, (ax, activation) in enumerate(zip(axes, ("sigmoid", "centered_sigmoid"), strict=True)):
        model = _model(activation, seed)
        trace = _Trace(linear_layers(model)[1][1])
        lr = best[(activation, "unit_centred")]
        fit(
            model,
            task,
            optimizer="sgd",
            lr=lr,
            steps=min(steps, 200),
            batch_size=BATCH,
            seed=seed,
            watch=False,
            callbacks=[trace],
        )
        p = torch.stack(trace.points).numpy()  # (steps + 1, 2)
        ax.plot(p[:, 0], p[:, 1], ".-", ms=2, lw=0.8, color=f"C{k}")
        ax.plot(*p[0], "ko", ms=4)
        title = f"{NAMES[activation]}, lr {lr:g}: w[0, 0] vs w[0, 1]"
        ax.set(title=title, xlabel="w[0, 0]", ylabel="w[0, 1]")
        ax.grid(alpha=0.3)
    return fig


EXPERIMENT = Experiment(
    name="zero-centered",
    title="Zero-centred activations and inputs",
    question=(
        "Do all-positive inputs to a layer (sigmoid outputs, raw pixels) force one-signed "
        "gradient updates that zig-zag, and does centring them alone (sigmoid - 1/2, pixels "
        "minus their mean) avoid it (seed 004; LeCun et al. 1998)?"
    ),
    measure=measure,
    claims=claims,
    figures=figures,
)
