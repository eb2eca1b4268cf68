"""Experiment 5, `dead-relu`: ReLU units that never fire again, and the variants that cannot die.

A ReLU unit whose pre-activation z = w.x + b is negative for every input has derivative 0 on
all of them: its incoming weights get no gradient and it stays dead. A large
learning rate (one big update pushes b far below zero) or a negative bias at init does it.
Leaky ReLU (Maas et al. 2013), PReLU (He et al. 2015) and RReLU (Xu et al. 2015) keep a
non-zero slope for z < 0; ELU (Clevert et al. 2016) has derivative exp(z) there, which is
positive in exact arithmetic but underflows to 0 in float32 for z below about -104.

We train a 4-layer MLP on digits with each activation under three conditions (a small Adam
learning rate, a large one, and a small one with every bias initialised negative) and
measure the dead fraction on a fixed probe batch during training.
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
from gradsight.models.activations import ACTIVATIONS as ACTIVATION_CLASSES
from gradsight.stats import mean_and_range, mean_spread, spread_where
from gradsight.train import fit
from gradsight.train.callbacks import Callback, FitState

ACTIVATIONS = ("relu", "leaky_relu", "elu", "prelu", "rrelu")
# The variants whose derivative for z < 0 is a slope bounded away from zero.
SLOPED = ("leaky_relu", "prelu", "rrelu")
# condition -> (Adam learning rate, bias at init)
CONDITIONS = {
    "small lr": (1e-3, 0.0),
    "large lr": (0.1, 0.0),
    "negative bias": (1e-3, -3.0),
}
DEPTH = 4
WIDTH = 64
BATCH = 64
PROBE = 512
# A claim "kills" units when the dead fraction reaches this on every seed.
KILLED = 0.3
# "Alive": at most this fraction dead.
ALIVE = 0.01
# At the small learning rate ReLU keeps all but this fraction of its units, on every seed.
SMALL_LR_DEAD = 0.05

LARGE_LR_KILLS = ClaimSpec(
    "large-lr-kills",
    "A large learning rate kills ReLU units: with Adam at lr {large_lr:g} at least "
    "{killed:.0%} of the units end dead, against under {small_dead:.0%} at lr {small_lr:g}.",
    rule="every large-lr seed >= {killed:g} and every small-lr seed < {small_dead:g}",
    central=True,
    control="varied: the Adam rate (small against large); fixed: ReLU, depth, width, He init, "
    "zero biases, batch, steps, probe batch, seeds",
)
NEGATIVE_BIAS_KILLS = ClaimSpec(
    "negative-bias-kills",
    "Negative biases (b = {bias:g}) kill ReLU units at init, and they stay dead: at least "
    "{killed:.0%} dead before and after training.",
    rule="every seed >= {killed:g} dead at init and after training",
    central=True,
    control="varied: the biases at init (0 against negative); fixed: ReLU, the small Adam "
    "rate, depth, width, He init, batch, steps, probe batch, seeds",
    second_look="No confound found: the negative-bias and small-rate nets differ only in the "
    "biases at init. The dead fraction falls below {killed:.0%} {failed} in some seed: a "
    "dead unit gets no gradient, but the layers below it keep learning and move the inputs it "
    "sees, so units can revive.",
)
VARIANTS_ALIVE = ClaimSpec(
    "variants-alive",
    "Leaky ReLU, ELU, PReLU and RReLU keep their units alive under every condition (at most "
    "{alive:.0%} dead at any probe).",
    rule="every variant's largest dead fraction <= {alive:g}",
    control="varied: the activation (leaky ReLU, ELU, PReLU, RReLU) and the condition (small "
    "rate, large rate, negative bias); fixed: depth, width, He init, batch, steps, probe "
    "batch, seeds",
    second_look="No confound found: every variant ran under the same three conditions. The "
    "largest dead fraction is {worst_variant}'s. ELU's derivative exp(z) underflows to 0 in "
    "float32 below z = -104, so its units can die when a large step drives z that low; the "
    "variants whose slope never reaches 0 are the sloped-never-die claim.",
)
SLOPED_NEVER_DIE = ClaimSpec(
    "sloped-never-die",
    "Leaky ReLU, PReLU and RReLU, whose slope for z < 0 never reaches zero, have no dead "
    "units under any condition.",
    rule="the largest dead fraction <= {alive:g}",
    central=True,
    control="varied: the activation (leaky ReLU, PReLU, RReLU) and the condition (small rate, "
    "large rate, negative bias); fixed: depth, width, He init, batch, steps, probe batch, "
    "seeds",
)
VARIANTS_LEARN = ClaimSpec(
    "variants-learn",
    "At the large learning rate every variant ends with a higher test accuracy than ReLU, its "
    "dead units no longer learning.",
    rule="every variant's mean accuracy > ReLU's",
    control="varied: the activation, at the large Adam rate; fixed: depth, width, He init, "
    "zero biases, batch, steps, seeds",
    second_look="Confound found, not controlled: at the large rate a variant can fail for "
    "reasons other than dead units (ELU's units die by float32 underflow, and so large an Adam "
    "rate can destabilise any net), so accuracy at that one rate mixes dying with instability. "
    "The lowest mean accuracy among the variants is {worst_variant}'s, {worst:.2f}, against "
    "ReLU's {relu:.2f}.",
)


def dead_fraction(model: nn.Module, x: Tensor) -> float:
    """Fraction of hidden units whose activation derivative is 0 on every example of `x`.

    For each activation module f with input z (B, units), a unit is dead when
    f'(z_b) == 0 for all b: no example sends it a gradient. The derivative is taken with
    autograd in eval mode (RReLU then uses its mean slope); the model's mode is restored.
    """
    inputs: list[tuple[nn.Module, Tensor]] = []

    def keep(module: nn.Module, args: tuple[Tensor, ...], _output: Tensor) -> None:
        inputs.append((module, args[0].detach()))

    kinds = tuple(ACTIVATION_CLASSES[a] for a in ACTIVATIONS)
    handles = [m.register_forward_hook(keep) for m in model.modules() if isinstance(m, kinds)]
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(training)
    dead = []
    for module, z in inputs:  # z: (B, units)
        z = z.clone().requires_grad_(True)
        with torch.enable_grad():
            (slope,) = torch.autograd.grad(module(z).sum(), z)
        dead.append((slope == 0).all(dim=0))  # (units,)
    return float(torch.cat(dead).float().mean())


class _DeadProbe(Callback):
    """Records the dead fraction on a fixed batch every `every` steps (and before training)."""

    def __init__(self, x: Tensor, every: int) -> None:
        self.x, self.every = x, every
        self.steps: list[int] = []
        self.dead: list[float] = []

    def on_fit_start(self, state: FitState) -> None:
        self.steps.append(0)
        self.dead.append(dead_fraction(state.model, self.x))

    def on_step_end(self, state: FitState) -> None:
        if (state.step + 1) % self.every == 0:
            self.steps.append(state.step + 1)
            self.dead.append(dead_fraction(state.model, self.x))


def _trial(task, steps: int, point: tuple[str, str, int]) -> tuple[dict, list[dict]]:
    """One (activation, condition, seed): its row and its dead-fraction curve's rows."""
    activation, condition, seed = point
    lr, bias = CONDITIONS[condition]
    model = models.mlp(
        64,
        10,
        depth=DEPTH,
        width=WIDTH,
        activation=activation,
        init="he_normal",
        bias_init=bias,
        seed=seed,
    )
    probe = _DeadProbe(task.x_train[:PROBE], max(steps // 30, 1))  # a fixed probe batch
    result = fit(
        model,
        task,
        optimizer="adam",
        lr=lr,
        steps=steps,
        batch_size=BATCH,
        seed=seed,
        watch=False,
        callbacks=[probe],
    )
    row = {
        "activation": activation,
        "condition": condition,
        "seed": seed,
        "dead_init": probe.dead[0],
        "dead_final": probe.dead[-1],
        "dead_max": max(probe.dead),
        "test_accuracy": float(result.metrics["test_accuracy"]),
        "diverged": bool(result.metrics["diverged"]),
    }
    curve = [
        {"activation": activation, "condition": condition, "seed": seed, "step": t, "dead": d}
        for t, d in zip(probe.steps, probe.dead, strict=True)
    ]
    return row, curve


def _runs(config: LabConfig, steps: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    task = data.load("digits", seed=0)
    grid = [(a, c, s) for a in ACTIVATIONS for c in CONDITIONS for s in config.seed_list]
    trials = config.map(partial(_trial, task, steps), grid, "dead-relu")
    rows = [row for row, _ in trials]
    return pd.DataFrame(rows), pd.DataFrame([r for _, curve in trials for r in curve])


def measure(config: LabConfig) -> Measured:
    """Every (activation, condition, seed) trained, its dead fraction probed on the way."""
    steps = config.pick(200, 1500)
    frame, curves = _runs(config, steps)
    return Measured(
        tables={"runs": frame, "curves": curves},
        params={
            "activations": list(ACTIVATIONS),
            "conditions (adam lr, bias init)": CONDITIONS,
            "net": f"MLP depth {DEPTH}, width {WIDTH}, He init",
            "batch": BATCH,
            "steps": steps,
            "probe": f"{PROBE} training examples",
            "seeds": config.seed_list,
            "task": "digits",
        },
    )


def large_lr_kills(m: Measured) -> Claim:
    frame = m.tables["runs"]
    small = spread_where(frame, "dead_final", activation="relu", condition="small lr")
    large = spread_where(frame, "dead_final", activation="relu", condition="large lr")
    return LARGE_LR_KILLS.judge(
        large.low >= KILLED and small.high < SMALL_LR_DEAD,
        {"dead, large lr": large, "dead, small lr": small},
        f"dead fraction {large.mean:.2f} (min over seeds {large.low:.2f}) at the large lr vs "
        f"{small.mean:.3f} (max {small.high:.3f}) at the small one, after "
        f"{m.params['steps']} steps",
        large_lr=CONDITIONS["large lr"][0],
        small_lr=CONDITIONS["small lr"][0],
        killed=KILLED,
        small_dead=SMALL_LR_DEAD,
    )


def negative_bias_kills(m: Measured) -> Claim:
    frame = m.tables["runs"]
    init = spread_where(frame, "dead_init", activation="relu", condition="negative bias")
    final = spread_where(frame, "dead_final", activation="relu", condition="negative bias")
    return NEGATIVE_BIAS_KILLS.judge(
        init.low >= KILLED and final.low >= KILLED,
        {"dead at init": init, "dead after training": final},
        f"{init.mean:.2f} dead at init, {final.mean:.2f} after {m.params['steps']} steps "
        f"(min over seeds {min(init.low, final.low):.2f})",
        bias=CONDITIONS["negative bias"][1],
        killed=KILLED,
        failed="at init" if init.low < KILLED else "after training",
    )


def variants_alive(m: Measured) -> Claim:
    frame = m.tables["runs"]
    worst = frame[frame.activation != "relu"].groupby("activation")["dead_max"].max()
    elu_died = worst.get("elu", 0.0) > ALIVE
    return VARIANTS_ALIVE.judge(
        bool((worst <= ALIVE).all()),
        {"largest dead fraction": worst.to_dict()},
        "largest dead fraction over conditions, seeds and probes: "
        + ", ".join(f"{a} {v:.3f}" for a, v in worst.items())
        + (
            "; ELU's exp(z) underflows to 0 in float32 once z < -104, so its units die too "
            "when a large step drives z that low"
            if elu_died
            else ""
        ),
        alive=ALIVE,
        worst_variant=worst.idxmax(),
    )


def sloped_never_die(m: Measured) -> Claim:
    frame = m.tables["runs"]
    sloped = frame[frame.activation.isin(SLOPED)]
    worst = mean_spread(sloped.groupby("seed")["dead_max"].max())
    return SLOPED_NEVER_DIE.judge(
        worst.high <= ALIVE,
        {"largest dead fraction per seed": worst},
        f"largest dead fraction {worst.high:.3f} over {len(sloped)} runs",
        alive=ALIVE,
    )


def variants_learn(m: Measured) -> Claim:
    frame = m.tables["runs"]
    acc = {
        a: spread_where(frame, "test_accuracy", activation=a, condition="large lr")
        for a in ACTIVATIONS
    }
    variants = [a for a in ACTIVATIONS if a != "relu"]
    return VARIANTS_LEARN.judge(
        all(acc[a].mean > acc["relu"].mean for a in variants),
        {f"accuracy, {a}": s for a, s in acc.items()},
        ", ".join(f"{a} {s.mean:.2f}" for a, s in acc.items())
        + f" (mean test accuracy, lr {CONDITIONS['large lr'][0]})",
        worst_variant=min(variants, key=lambda a: acc[a].mean),
        worst=min(acc[a].mean for a in variants),
        relu=acc["relu"].mean,
    )


CHECKS = (large_lr_kills, negative_bias_kills, variants_alive, sloped_never_die, variants_learn)


def claims(m: Measured) -> list[Claim]:
    """The claims of `CHECKS`, judged on the measurements."""
    return judge_all(CHECKS, m)


def figures(m: Measured) -> Figures:
    """The dead fraction during training, and after it."""
    steps = m.params["steps"]
    drawn = {
        "dead_over_training": _curve_figure(m.tables["curves"]),
        "dead_final": _bar_figure(m.tables["runs"], steps),
    }
    captions = {
        "dead_over_training": "Fraction of dead hidden units (derivative 0 on all "
        f"{PROBE} probe examples) during training, mean over seeds, band: min to max. ReLU "
        "alone loses units at the large learning rate and never recovers those the negative "
        "bias killed.",
        "dead_final": f"Dead fraction after {steps} steps per activation and condition (mean "
        "over seeds, bars: min to max).",
    }
    return drawn, captions


def _curve_figure(curves: pd.DataFrame):
    fig = new_figure(None, 10.0, 3.6)
    axes = fig.subplots(1, len(CONDITIONS), sharey=True)
    for ax, condition in zip(axes, CONDITIONS, strict=True):
        for i, activation in enumerate(ACTIVATIONS):
            g = curves[(curves.condition == condition) & (curves.activation == activation)]
            stats = g.groupby("step")["dead"].agg(["mean", "min", "max"])
            ax.plot(stats.index, stats["mean"], color=f"C{i}", label=activation)
            ax.fill_between(stats.index, stats["min"], stats["max"], color=f"C{i}", alpha=0.15)
        lr, bias = CONDITIONS[condition]
        ax.set(title=f"{condition} (lr {lr}, b {bias})", xlabel="step", ylim=(-0.02, 1.0))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("dead fraction")
    axes[0].legend(fontsize="small")
    return fig


def _bar_figure(frame: pd.DataFrame, steps: int):
    fig = new_figure(None, 8.0, 3.6)
    ax = fig.subplots()
    width = 0.8 / len(CONDITIONS)
    for j, condition in enumerate(CONDITIONS):
        g = frame[frame.condition == condition].groupby("activation", sort=False)["dead_final"]
        mean, yerr = mean_and_range(g, ACTIVATIONS)
        pos = np.arange(len(ACTIVATIONS)) + (j - (len(CONDITIONS) - 1) / 2) * width
        ax.bar(
            pos,
            mean,
            width,
            yerr=yerr,
            label=condition,
            color=f"C{j}",
        )
    ax.set_xticks(range(len(ACTIVATIONS)), list(ACTIVATIONS))
    ax.set(ylabel="dead fraction", title=f"after {steps} steps", ylim=(0, 1))
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, axis="y")
    return fig


EXPERIMENT = Experiment(
    name="dead-relu",
    title="Dead ReLU units and the activations that stay alive",
    question=(
        "Do a large learning rate and negative biases kill ReLU units for good, and do leaky "
        "ReLU, ELU, PReLU and RReLU keep them alive (Maas et al. 2013, "
        "He et al. 2015, Xu et al. 2015, Clevert et al. 2016)?"
    ),
    measure=measure,
    claims=claims,
    figures=figures,
)
