"""Experiment 8, `exploding-clipping`: a net that explodes, and clipping and L2 against it.

With weights drawn too large, each layer multiplies the activations and the back-propagated
error by more than one, and the first SGD steps send the loss to infinity
(Pascanu et al. 2013). Clipping the gradient, by its global norm g <- g * min(1, c / ||g||)
or element-wise g_i <- clip(g_i, -c, c), bounds every step. An L2 penalty (l2 / 2) ||w||^2
pulls the weights towards zero, limiting their norm.

We train an 8-layer ReLU MLP with N(0, 0.4^2) weights (He would be 0.18) on digits with SGD,
plain, clipped by norm, clipped by value, with L2, and with both.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import torch

from gradsight import data, models
from gradsight.drawing import new_figure
from gradsight.lab.claims import ClaimSpec, judge_all
from gradsight.lab.experiment import Claim, Experiment, Figures, LabConfig, Measured
from gradsight.stats import spread_where
from gradsight.train import fit

DEPTH = 8
WIDTH = 64
STD = 0.4  # sqrt(2 / 64) = 0.18 is He's
BATCH = 64
LR = 0.05
CLIP_NORM = 1.0
CLIP_VALUE = 0.1
# condition -> fit's keyword arguments
CONDITIONS = {
    "plain": {},
    "clip norm": {"clip_norm": CLIP_NORM},
    "clip value": {"clip_value": CLIP_VALUE},
    "l2 1e-2": {"l2": 1e-2},
    "clip norm + l2 1e-2": {"clip_norm": CLIP_NORM, "l2": 1e-2},
    "clip norm + l2 1e-1": {"clip_norm": CLIP_NORM, "l2": 1e-1},
}
RESCUED = 0.5  # test accuracy (chance 0.1)

PLAIN_EXPLODES = ClaimSpec(
    "plain-explodes",
    "With N(0, {std:g}^2) weights (over twice He's std) plain SGD explodes: the loss turns "
    "non-finite and training stops.",
    rule="every run diverges",
    central=True,
    control="varied: the seed only (the reference arm); fixed: N(0, 0.4^2) init, depth, width, "
    "SGD rate and batch, steps",
)
CLIP_RESCUES = ClaimSpec(
    "clip-{by}-rescues",
    "Clipping the gradient by {by} ({value:g}) rescues it: no run diverges and every seed "
    "reaches test accuracy >= {rescued:g}.",
    rule="no run diverges and every seed's test accuracy >= {rescued:g}",
    central=True,
    control="varied: gradient clipping (by norm or by value) against none; fixed: N(0, 0.4^2) "
    "init, depth, width, SGD rate and batch, steps, seeds",
)
L2_ALONE_FAILS = ClaimSpec(
    "l2-alone-fails",
    "L2 regularisation (1e-2) alone does not stop the explosion.",
    rule="every run diverges",
    control="varied: an L2 penalty against none, without clipping; fixed: N(0, 0.4^2) init, "
    "depth, width, SGD rate and batch, steps, seeds",
)
L2_SHRINKS = ClaimSpec(
    "l2-shrinks",
    "L2 shrinks the weights: with clipping, the final weight norm falls as l2 grows from 0 to "
    "1e-2 to 1e-1.",
    rule="the seeds' ranges are ordered",
    control="varied: the L2 penalty (0, 1e-2, 1e-1), each with norm clipping; fixed: N(0, "
    "0.4^2) init, depth, width, SGD rate and batch, steps, seeds",
    second_look="Confound found, not controlled here: the clip bounds the whole gradient, "
    "penalty included, so a step moves the weights by at most {max_step:g}, and in {steps} "
    "steps by at most {reach:g} in all against an initial norm of {init:.1f}: the budget "
    "caps how far the penalty can pull them, and the seeds' ranges overlap. The budget is "
    "the run's steps, longer in full mode.",
)


def weight_norm(model: torch.nn.Module) -> float:
    """sqrt(sum ||W||_F^2) over the weight matrices (biases left out)."""
    with torch.no_grad():
        return (
            float(sum(p.pow(2).sum() for n, p in model.named_parameters() if "weight" in n)) ** 0.5
        )


def _trial(task, steps: int, point: tuple[str, int]) -> dict:
    """One (condition, seed): its row."""
    condition, seed = point
    model = models.mlp(
        64,
        10,
        depth=DEPTH,
        width=WIDTH,
        activation="relu",
        init="normal",
        init_options={"std": STD},
        seed=seed,
    )
    before = weight_norm(model)
    result = fit(
        model,
        task,
        optimizer="sgd",
        lr=LR,
        steps=steps,
        batch_size=BATCH,
        seed=seed,
        watch=False,
        **CONDITIONS[condition],
    )
    loss = result.history.table("loss").iloc[:, 0].to_numpy()
    return {
        "condition": condition,
        "seed": seed,
        "diverged": bool(result.metrics["diverged"]),
        "steps_taken": int(result.metrics["steps"]),
        "first_loss": float(loss[0]),
        "test_accuracy": float(result.metrics["test_accuracy"]),
        "weight_norm_init": before,
        "weight_norm_final": weight_norm(model),
    }


def _runs(config: LabConfig, steps: int) -> pd.DataFrame:
    task = data.load("digits", seed=0)
    grid = [(c, s) for c in CONDITIONS for s in config.seed_list]
    return pd.DataFrame(config.map(partial(_trial, task, steps), grid, "exploding-clipping"))


def measure(config: LabConfig) -> Measured:
    """Every (condition, seed) trained with SGD."""
    steps = config.pick(300, 1500)
    return Measured(
        tables={"runs": _runs(config, steps)},
        params={
            "net": f"ReLU MLP depth {DEPTH}, width {WIDTH}, N(0, {STD}^2) weights",
            "optimizer": f"sgd lr {LR}, batch {BATCH}",
            "conditions": CONDITIONS,
            "steps": steps,
            "seeds": config.seed_list,
            "task": "digits",
        },
    )


def _rows(m: Measured, condition: str) -> pd.DataFrame:
    frame = m.tables["runs"]
    return frame[frame.condition == condition]


def plain_explodes(m: Measured) -> Claim:
    plain = _rows(m, "plain")
    return PLAIN_EXPLODES.judge(
        bool(plain.diverged.all()),
        {
            "diverged runs": int(plain.diverged.sum()),
            "runs": len(plain),
            "steps taken": spread_where(m.tables["runs"], "steps_taken", condition="plain"),
        },
        f"{int(plain.diverged.sum())} of {len(plain)} runs diverged, after "
        f"{plain.steps_taken.mean():.0f} steps on average (of {m.params['steps']})",
        std=STD,
    )


def _clip_rescues(m: Measured, condition: str, value: float) -> Claim:
    rows = _rows(m, condition)
    acc = spread_where(m.tables["runs"], "test_accuracy", condition=condition)
    return CLIP_RESCUES.judge(
        not rows.diverged.any() and acc.low >= RESCUED,
        {"test accuracy": acc, "diverged runs": int(rows.diverged.sum())},
        f"{int(rows.diverged.sum())} diverged; test accuracy {acc.mean:.2f} (min "
        f"{acc.low:.2f}) after {m.params['steps']} steps",
        by=condition.split()[-1],
        value=value,
        rescued=RESCUED,
    )


def clip_norm_rescues(m: Measured) -> Claim:
    return _clip_rescues(m, "clip norm", CLIP_NORM)


def clip_value_rescues(m: Measured) -> Claim:
    return _clip_rescues(m, "clip value", CLIP_VALUE)


def l2_alone_fails(m: Measured) -> Claim:
    rows = _rows(m, "l2 1e-2")
    return L2_ALONE_FAILS.judge(
        bool(rows.diverged.all()),
        {"diverged runs": int(rows.diverged.sum()), "runs": len(rows)},
        f"{int(rows.diverged.sum())} of {len(rows)} runs diverged",
    )


def l2_shrinks(m: Measured) -> Claim:
    frame = m.tables["runs"]
    conditions = ("clip norm", "clip norm + l2 1e-2", "clip norm + l2 1e-1")
    norms = [spread_where(frame, "weight_norm_final", condition=c) for c in conditions]
    return L2_SHRINKS.judge(
        norms[0].low > norms[1].high and norms[1].low > norms[2].high,
        {"l2 0": norms[0], "l2 1e-2": norms[1], "l2 1e-1": norms[2]},
        f"final ||W||: {norms[0].mean:.1f}, {norms[1].mean:.1f}, {norms[2].mean:.1f} (init "
        f"{frame.weight_norm_init.mean():.1f}). The clip bounds the whole gradient, penalty "
        f"included, so each step moves the weights by at most lr x {CLIP_NORM} = "
        f"{LR * CLIP_NORM}",
        max_step=LR * CLIP_NORM,
        steps=m.params["steps"],
        reach=LR * CLIP_NORM * m.params["steps"],
        init=frame.weight_norm_init.mean(),
    )


CHECKS = (plain_explodes, clip_norm_rescues, clip_value_rescues, l2_alone_fails, l2_shrinks)


def claims(m: Measured) -> list[Claim]:
    """The claims of `CHECKS`, judged on the measurements."""
    return judge_all(CHECKS, m)


def figures(m: Measured) -> Figures:
    """Test accuracy and weight norm per condition."""
    frame, steps = m.tables["runs"], m.params["steps"]
    drawn = {"outcome": _outcome_figure(frame, steps), "weight_norm": _norm_figure(frame)}
    captions = {
        "outcome": f"Test accuracy after {steps} SGD steps (lr {LR}) per condition, dots are "
        "seeds; a cross marks a run stopped by a non-finite loss.",
        "weight_norm": "Weight norm sqrt(sum ||W_l||_F^2) at init and at the end, per "
        "condition (mean over seeds; diverged runs have none).",
    }
    return drawn, captions


def _outcome_figure(frame: pd.DataFrame, steps: int):
    fig = new_figure(None, 9.0, 3.8)
    ax = fig.subplots()
    names = list(CONDITIONS)
    for k, condition in enumerate(names):
        g = frame[frame.condition == condition]
        ax.bar(k, g.test_accuracy.mean(), color=f"C{k}", alpha=0.6)
        ok = g[~g.diverged]
        ax.plot([k] * len(ok), ok.test_accuracy, "k.", ms=5)
        bad = g[g.diverged]
        ax.plot([k] * len(bad), np.full(len(bad), 0.05), "rx", ms=7)
    ax.set_xticks(range(len(names)), [n.replace(" + ", "\n+ ") for n in names], fontsize="small")
    ax.set(ylabel="test accuracy", ylim=(0, 1), title=f"after {steps} steps")
    ax.grid(alpha=0.3, axis="y")
    return fig


def _norm_figure(frame: pd.DataFrame):
    fig = new_figure(None, 9.0, 3.6)
    ax = fig.subplots()
    names = list(CONDITIONS)
    stats = frame.groupby("condition")[["weight_norm_init", "weight_norm_final"]].mean()
    stats = stats.reindex(names)
    pos = np.arange(len(names))
    ax.bar(pos - 0.2, stats.weight_norm_init, 0.4, label="init", color="C7")
    ax.bar(pos + 0.2, stats.weight_norm_final, 0.4, label="final", color="C0")
    ax.set_xticks(pos, [n.replace(" + ", "\n+ ") for n in names], fontsize="small")
    ax.set(ylabel="weight norm")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, axis="y")
    return fig


EXPERIMENT = Experiment(
    name="exploding-clipping",
    title="Exploding gradients, clipping and L2",
    question=(
        "Does a deep net with too large weights explode under SGD, and do gradient clipping "
        "by norm or by value rescue it while L2 limits the weights' norm (Pascanu "
        "et al. 2013)?"
    ),
    measure=measure,
    claims=claims,
    figures=figures,
)
