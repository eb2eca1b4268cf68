"""Experiment 16, `pretraining`: greedy layer-wise pretraining against random init.

Hinton, Osindero & Teh (2006) trained a deep net one layer at a time, each layer an
unsupervised model of the layer below, and only then fine-tuned the whole net with
back-propagation; Bengio et al. (2007) showed that autoencoders trained with a cross-entropy
reconstruction do about as well as the paper's RBMs, and that is what we stack here. A deep
sigmoid MLP on digits (pixels scaled to [0, 1]) is pretrained layer by layer, then fine-tuned
with plain SGD; the same net from random init (Glorot's and PyTorch's default) gets the same
SGD budget. Two controls ask why it helps: the pretrained weights shuffled within each layer
(same values, no learned structure; Erhan et al. 2010), and random init given as many SGD
steps as pretraining and fine-tuning took together.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
import torch
from torch import nn

from gradsight import data, models
from gradsight.data import Task
from gradsight.drawing import log_plot, new_figure, positive
from gradsight.lab.claims import ClaimSpec, judge_all, mean_interval
from gradsight.lab.experiment import Claim, Experiment, Figures, LabConfig, Measured
from gradsight.lab.measure import first_last_ratio, linear_layers, preactivation_grad_norms
from gradsight.stats import Spread, geometric_mean, mean_spread, spread_where, values_where
from gradsight.train import fit, pretrain_layerwise

DEPTH = 8  # Linear layers: 7 sigmoid hidden layers and the softmax head
WIDTH = 64
BATCH = 64
# Fine-tuning, the same for every arm: plain SGD. Random init stayed at chance with lr 0.1
# and 2.0 too (500 steps, 2 seeds); the pretrained net learned with all three.
LR = 0.5
# Pretraining: Adam on each autoencoder's reconstruction loss.
PRETRAIN_LR = 1e-2
EVAL_EVERY = 50


@dataclass(frozen=True)
class Arm:
    """One way to start fine-tuning: the net's init and depth, what is done before, the budget.

    Attributes:
        init: The `gs.models` init scheme the net is built with.
        depth: Linear layers.
        pretrain: Pretrain the hidden layers greedily first.
        shuffle: Then permute each hidden layer's pretrained weights (a control).
        long: Fine-tune for the long budget (as many steps as pretraining and fine-tuning).
    """

    init: str
    depth: int = DEPTH
    pretrain: bool = False
    shuffle: bool = False
    long: bool = False


# Pretraining overwrites the hidden layers' init; the head keeps PyTorch's default.
ARMS = {
    "pretrained": Arm("default", pretrain=True),
    "shuffled": Arm("default", pretrain=True, shuffle=True),
    "glorot": Arm("xavier_uniform"),
    "default": Arm("default"),
    "glorot, long": Arm("xavier_uniform", long=True),
    # A control: the same recipe must train a shallow sigmoid net, or the deep nets' failure
    # would say nothing about depth.
    "glorot, depth 3": Arm("xavier_uniform", depth=3),
}
RANDOM = ("glorot", "default")
LEARNED = 0.8
# The central claim: the worst pretrained seed beats the best random-init seed by this much
# test accuracy (chance is 0.10).
MARGIN = 0.3
# Pretraining must raise the first/last gradient ratio at least this much over Glorot's.
RAISE = 100.0
# The interval of the per-seed gain over Glorot init, shown beside the verdict
# (`mean_interval`).
GAIN_INTERVAL = "t"

PRETRAINED_LEARNS = ClaimSpec(
    "pretrained-learns",
    "Pretrained layer by layer, the {depth}-layer sigmoid net learns digits within {steps} SGD "
    "steps of fine-tuning, far better than from random init (Glorot or PyTorch's default) with "
    "the same steps.",
    rule="the worst pretrained seed beats the best random one by >= {margin:g}",
    central=True,
    control="varied: how fine-tuning starts (pretrained, Glorot init, PyTorch's default init); "
    "fixed: depth, width, sigmoid, SGD rate and batch, fine-tuning steps, seeds",
)
GRADIENT_RELIEVED = ClaimSpec(
    "gradient-relieved",
    "Pretraining relieves the vanishing gradient: at the start of fine-tuning the first/last "
    "layer gradient ratio is over {raise_:.0f}x Glorot init's.",
    rule="every pretrained seed is >= {raise_:.0f}x every Glorot seed",
    control="varied: how fine-tuning starts (pretrained against Glorot init); fixed: depth, "
    "width, sigmoid, the batch, seeds",
)
STRUCTURE_NOT_SCALE = ClaimSpec(
    "structure-not-scale",
    "The gain lies in what the layers learned, not only in their weights' scale: shuffled "
    "within each layer, the pretrained weights fine-tune worse in every seed (Erhan et al. "
    "2010).",
    rule="every shuffled seed is below every pretrained one",
    control="varied: the pretrained weights against the same weights shuffled within each "
    "layer; fixed: their values and scale, depth, SGD rate and batch, steps, seeds",
)
NOT_MORE_UPDATES = ClaimSpec(
    "not-more-updates",
    "It is not just more updates: Glorot init given {long_steps} SGD steps (one per "
    "pretraining step and fine-tuning step) stays below the pretrained net.",
    rule="every seed stays below the worst pretrained one",
    control="varied: the start and the budget (Glorot init given as many steps as pretraining "
    "and fine-tuning together); fixed: depth, width, SGD rate and batch, seeds",
)
DEPTH_FAILS = ClaimSpec(
    "depth-fails",
    "The fine-tuning recipe is sound and depth is what fails: the same {steps} SGD steps train "
    "a 3-layer sigmoid net from Glorot init to >= {learned:g} accuracy.",
    rule="every depth-3 seed reaches {learned:g}",
    control="varied: the depth (3 layers against the deep net); fixed: Glorot init, sigmoid, "
    "width, SGD rate and batch, steps, seeds",
)
AUTOENCODERS_LEARN = ClaimSpec(
    "autoencoders-learn",
    "Every autoencoder learned something: its reconstruction loss is below that of "
    "reconstructing each unit by its mean.",
    rule="every (layer, seed) autoencoder beats the per-unit mean",
    control="varied: the layer; fixed: the autoencoder recipe (Adam rate, steps), seeds; "
    "against reconstructing each unit by its mean",
)


def scaled_digits() -> Task:
    """Digits with raw pixels / 16 in [0, 1]: targets a sigmoid reconstruction can reach."""
    task = data.load("digits", seed=0, standardize=False)
    return dataclasses.replace(task, x_train=task.x_train / 16, x_test=task.x_test / 16)


@torch.no_grad()
def shuffle_hidden(model: nn.Sequential, seed: int) -> None:
    """Permute the entries of each hidden layer's W and of its b: same values, no structure."""
    generator = torch.Generator().manual_seed(seed)
    for _, fc in linear_layers(model)[:-1]:
        for p in (fc.weight, fc.bias):
            flat = p.flatten()
            p.copy_(flat[torch.randperm(flat.numel(), generator=generator)].view_as(p))


def _trial(
    task: Task, pretrain_steps: int, steps: int, long_steps: int, point: tuple[str, int]
) -> dict:
    """One (arm, seed): build, maybe pretrain, measure the gradient flow, fine-tune."""
    name, seed = point
    arm = ARMS[name]
    model = models.mlp(
        64, 10, depth=arm.depth, width=WIDTH, activation="sigmoid", init=arm.init, seed=seed
    )
    layers = []
    if arm.pretrain:
        layers = pretrain_layerwise(model, task.x_train, pretrain_steps, PRETRAIN_LR, BATCH, seed)
    if arm.shuffle:
        shuffle_hidden(model, seed)
    x, y = task.x_train[:256], task.y_train[:256]  # the fixed probe batch
    norms = preactivation_grad_norms(model, x, y, task.loss_fn)  # (depth,)
    before = task.evaluate(model)["accuracy"]
    budget = long_steps if arm.long else steps
    result = fit(
        model,
        task,
        optimizer="sgd",
        lr=LR,
        steps=budget,
        batch_size=BATCH,
        eval_every=EVAL_EVERY,
        seed=seed,
        watch=False,
    )
    accuracy = result.history.series("test/accuracy")
    curve = pd.Series([before, *accuracy.to_numpy()], index=[0, *(accuracy.index + 1)])
    row = {
        "arm": name,
        "depth": arm.depth,
        "seed": seed,
        "steps": budget,
        "ratio_start": first_last_ratio(norms),
        "test_accuracy": float(result.metrics["test_accuracy"]),
        "train_loss": float(result.metrics["train_loss"]),
        "diverged": bool(result.metrics["diverged"]),
    }
    return {"row": row, "norms": norms, "curve": curve, "layers": layers}


def measure(config: LabConfig) -> Measured:
    """Every (arm, seed): pretrained or not, then fine-tuned with SGD."""
    task = scaled_digits()
    pretrain_steps = config.pick(200, 400)
    steps = config.pick(400, 1000)
    # Random init's catch-up budget: one SGD step per pretraining step and fine-tuning step.
    long_steps = (DEPTH - 1) * pretrain_steps + steps
    grid = [(arm, seed) for arm in ARMS for seed in config.seed_list]
    job = partial(_trial, task, pretrain_steps, steps, long_steps)
    trials = config.map(job, grid, "pretraining")
    layers = [
        {"seed": seed, **layer}
        for (arm, seed), t in zip(grid, trials, strict=True)
        if arm == "pretrained"
        for layer in t["layers"]
    ]
    return Measured(
        tables={
            "runs": pd.DataFrame([t["row"] for t in trials]),
            "pretraining": pd.DataFrame(layers),
        },
        params={
            "net": f"mlp depth {DEPTH} (control: 3), width {WIDTH}, sigmoid",
            "task": "digits, pixels / 16 in [0, 1]",
            "pretraining": (
                f"tied autoencoders, BCE, Adam lr {PRETRAIN_LR}, {pretrain_steps} steps per layer, "
                f"batch {BATCH}"
            ),
            "fine-tuning": f"sgd lr {LR}, batch {BATCH}, {steps} steps",
            "long budget": long_steps,
            "arms": {name: dataclasses.asdict(arm) for name, arm in ARMS.items()},
            "seeds": config.seed_list,
        },
        data={
            "steps": steps,
            "flows": {point: t["norms"] for point, t in zip(grid, trials, strict=True)},
            "curves": {point: t["curve"] for point, t in zip(grid, trials, strict=True)},
        },
    )


def _spread(m: Measured, arm: str, column: str = "test_accuracy") -> Spread:
    return spread_where(m.tables["runs"], column, arm=arm)


def pretrained_learns(m: Measured) -> Claim:
    pre = _spread(m, "pretrained")
    randoms = {arm: _spread(m, arm) for arm in RANDOM}
    best_random = max(s.high for s in randoms.values())
    frame = m.tables["runs"]
    gains = values_where(frame, "test_accuracy", arm="pretrained") - values_where(
        frame, "test_accuracy", arm="glorot"
    )
    label, interval = mean_interval(gains, GAIN_INTERVAL)
    return PRETRAINED_LEARNS.judge(
        pre.low - best_random >= MARGIN,
        {
            "pretrained accuracy": pre,
            **{f"{arm} accuracy": s for arm, s in randoms.items()},
            f"gain over glorot, {label}": interval,
        },
        f"test accuracy {pre.mean:.3f} (min {pre.low:.3f}) pretrained vs "
        + ", ".join(f"{a} {s.mean:.3f}" for a, s in randoms.items())
        + f" (best seed {best_random:.3f}; chance 0.10)",
        depth=DEPTH,
        steps=m.data["steps"],
        margin=MARGIN,
    )


def gradient_relieved(m: Measured) -> Claim:
    pre, glorot = _spread(m, "pretrained", "ratio_start"), _spread(m, "glorot", "ratio_start")
    return GRADIENT_RELIEVED.judge(
        pre.low >= RAISE * glorot.high,
        {"pretrained ratio": pre, "glorot ratio": glorot},
        f"||dL/dz_1|| / ||dL/dz_{DEPTH}|| {pre.mean:.2g} pretrained vs {glorot.mean:.2g} "
        f"Glorot ({pre.mean / glorot.mean:.0f}x)",
        raise_=RAISE,
    )


def structure_not_scale(m: Measured) -> Claim:
    shuffled, pre, glorot = (_spread(m, a) for a in ("shuffled", "pretrained", "glorot"))
    return STRUCTURE_NOT_SCALE.judge(
        shuffled.high < pre.low,
        {
            "shuffled accuracy": shuffled,
            "pretrained accuracy": pre,
            "shuffled ratio": _spread(m, "shuffled", "ratio_start"),
        },
        f"shuffled {shuffled.mean:.3f} (best seed {shuffled.high:.3f}) vs pretrained "
        f"{pre.mean:.3f} (worst seed {pre.low:.3f}) and Glorot {glorot.mean:.3f}",
    )


def not_more_updates(m: Measured) -> Claim:
    long, pre = _spread(m, "glorot, long"), _spread(m, "pretrained")
    long_steps = m.params["long budget"]
    return NOT_MORE_UPDATES.judge(
        long.high < pre.low,
        {"glorot, long accuracy": long, "pretrained accuracy": pre},
        f"after {long_steps} steps Glorot reaches {long.mean:.3f} (best seed {long.high:.3f}) "
        f"vs {pre.mean:.3f} pretrained after {m.data['steps']}",
        long_steps=long_steps,
    )


def depth_fails(m: Measured) -> Claim:
    shallow, glorot = _spread(m, "glorot, depth 3"), _spread(m, "glorot")
    return DEPTH_FAILS.judge(
        shallow.low >= LEARNED,
        {"depth 3 accuracy": shallow, f"depth {DEPTH} accuracy": glorot},
        f"Glorot init: {shallow.mean:.3f} (min {shallow.low:.3f}) at depth 3 vs "
        f"{glorot.mean:.3f} at depth {DEPTH}",
        steps=m.data["steps"],
        learned=LEARNED,
    )


def autoencoders_learn(m: Measured) -> Claim:
    layers = m.tables["pretraining"]
    beaten = layers["loss"] < layers["baseline"]
    return AUTOENCODERS_LEARN.judge(
        bool(beaten.all()),
        {
            "reconstruction BCE": mean_spread(layers["loss"]),
            "mean-unit BCE": mean_spread(layers["baseline"]),
        },
        f"{int(beaten.sum())} of {len(layers)} (layer, seed) autoencoders beat the per-unit "
        f"mean; BCE {layers['loss'].mean():.3f} vs {layers['baseline'].mean():.3f}",
    )


CHECKS = (
    pretrained_learns,
    gradient_relieved,
    structure_not_scale,
    not_more_updates,
    depth_fails,
    autoencoders_learn,
)


def claims(m: Measured) -> list[Claim]:
    """The claims of `CHECKS`, judged on the measurements."""
    return judge_all(CHECKS, m)


def figures(m: Measured) -> Figures:
    """Accuracy during fine-tuning, the gradient flow at its start, and the final accuracy."""
    seeds = m.params["seeds"]
    drawn = {
        "accuracy_curves": _curves_figure(m.data["curves"], seeds),
        "gradient_flow": _flow_figure(m.data["flows"], seeds),
        "final_accuracy": _final_figure(m.tables["runs"]),
    }
    captions = {
        "accuracy_curves": f"Test accuracy on digits during fine-tuning (SGD lr {LR}, batch "
        f"{BATCH}), mean over seeds, band min to max. From random init the {DEPTH}-layer "
        "sigmoid net stays at chance (0.10, grey line) while the 3-layer one learns; pretrained, "
        f"the {DEPTH}-layer net learns fastest; its shuffled weights lag far behind.",
        "gradient_flow": "||dL/dz_l|| per layer at the start of fine-tuning, relative to the "
        "output layer's (geometric mean over seeds, band min to max): pretraining flattens "
        "the staircase by orders of magnitude; its shuffled weights keep only part of that.",
        "final_accuracy": f"Test accuracy after fine-tuning, each dot a seed; 'glorot, long' "
        f"had {m.params['long budget']} SGD steps, as many as pretraining and fine-tuning "
        "together.",
    }
    return drawn, captions


def _colour(arm: str) -> str:
    """The arm's colour, the same in every figure."""
    return f"C{list(ARMS).index(arm)}"


def _curves_figure(curves: dict, seeds: list[int]):
    fig = new_figure(None, 8.0, 4.2)
    ax = fig.subplots()
    for arm in (a for a in ARMS if not ARMS[a].long):
        table = pd.concat([curves[arm, s] for s in seeds], axis=1)  # (evals, seeds)
        style = "o--" if arm == "default" else "o-"  # default and glorot overlap at chance
        ax.plot(table.index, table.mean(axis=1), style, ms=3, color=_colour(arm), label=arm)
        ax.fill_between(
            table.index, table.min(axis=1), table.max(axis=1), color=_colour(arm), alpha=0.2
        )
    ax.axhline(0.1, color="grey", lw=0.6, ls="--")
    ax.set(xlabel="fine-tuning step", ylabel="test accuracy", ylim=(0.0, 1.0))
    ax.legend(fontsize="small", loc="center right")
    ax.grid(alpha=0.3)
    return fig


def _flow_figure(flows: dict, seeds: list[int]):
    fig = new_figure(None, 8.0, 4.2)
    ax = fig.subplots()
    layers = np.arange(1, DEPTH + 1)
    for arm in (a for a in ARMS if ARMS[a].depth == DEPTH and not ARMS[a].long):
        relative = np.stack([flows[arm, s] / flows[arm, s][-1] for s in seeds])  # (seeds, L)
        log_plot(
            ax, layers, geometric_mean(relative, axis=0), "o-", ms=3, color=_colour(arm), label=arm
        )
        ax.fill_between(
            layers,
            positive(relative.min(0)),
            positive(relative.max(0)),
            color=_colour(arm),
            alpha=0.15,
        )
    ax.set(
        yscale="log",
        xlabel="layer l (input -> output)",
        ylabel="||dL/dz_l|| / ||dL/dz_L||",
        title="at the start of fine-tuning",
    )
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return fig


def _final_figure(frame: pd.DataFrame):
    fig = new_figure(None, 8.0, 3.6)
    ax = fig.subplots()
    for i, arm in enumerate(ARMS):
        values = frame.loc[frame.arm == arm, "test_accuracy"].to_numpy()
        ax.bar(i, values.mean(), color=_colour(arm), alpha=0.6)
        ax.plot(np.full(len(values), i), values, "o", color="black", ms=4)
    ax.axhline(0.1, color="grey", lw=0.6, ls="--")
    ax.set_xticks(range(len(ARMS)), list(ARMS))
    ax.set(ylabel="test accuracy", ylim=(0.0, 1.0))
    ax.grid(alpha=0.3, axis="y")
    return fig


EXPERIMENT = Experiment(
    name="pretraining",
    title="Greedy layer-wise pretraining against random init",
    question=(
        "Does greedy layer-wise pretraining, then fine-tuning, let a deep sigmoid net learn "
        "where the same net from random init does not within the same SGD budget, and is it "
        "the learned weights or just their scale (Hinton, Osindero & Teh 2006, "
        "Bengio et al. 2007)?"
    ),
    measure=measure,
    claims=claims,
    figures=figures,
)
