"""Experiment 13, `saddle`: a deep linear net started near zero sits at a saddle point.

For f(x) = W_3 W_2 W_1 x the origin is a critical point of the loss; near it the Hessian has
negative directions (lambda_min < 0) and the gradient is of the order of the weights' scale
squared (Saxe, McClelland & Ganguli 2014; Dauphin et al. 2014). We measure lambda_min with
Lanczos (`gs.curvature.eigenvalues(..., which="SA")`) and the gradient norm at a near-zero
init and at Xavier's, then the steps SGD, momentum and Adam need to leave the plateau, and
race the same rules on the 2D saddle x^2 - y^2 of `gs.playground` beside it.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import torch

from gradsight import curvature, data, models
from gradsight.drawing import new_figure
from gradsight.lab.experiment import Claim, Experiment, ExperimentResult, LabConfig
from gradsight.playground import get_surface, plot_trajectories, run_trajectory
from gradsight.stats import bootstrap_ci, mean_spread
from gradsight.train import fit

DEPTH = 3  # Linear layers, identity activations: a deep linear net
WIDTH = 32
NEAR_ZERO = 0.01  # std of N(0, std^2) weights "near zero"
PROBE = 512
BATCH = 64
# Each rule at a learning rate usual for it on digits.
RULES = {"sgd": 0.1, "momentum": 0.1, "adam": 1e-3}
# Escaped: the training loss falls below this (it starts at ln 10 = 2.303, the uniform guess).
ESCAPE_LOSS = 2.0
# On x^2 - y^2: escaped once f < -1 (|y| > 1 beyond |x|, far down the falling side).
ESCAPE_2D = -1.0


def _net(init: str, seed: int) -> torch.nn.Module:
    options = {"std": NEAR_ZERO} if init == "normal" else None
    return models.mlp(
        64,
        10,
        depth=DEPTH,
        width=WIDTH,
        activation="identity",
        init=init,
        init_options=options,
        seed=seed,
    )


def _at_init(model: torch.nn.Module, task, x, y) -> tuple[float, float]:
    """(lambda_min, ||grad L||) on the probe batch."""
    low = float(
        curvature.eigenvalues(model, task.loss_fn, (x, y), which="SA", max_iter=60).values[0]
    )
    grads = torch.autograd.grad(task.loss_fn(model(x), y), list(model.parameters()))
    return low, float(torch.cat([g.flatten() for g in grads]).norm())


def _escape_step(loss: pd.Series, threshold: float) -> float:
    """First step whose loss is below `threshold`; NaN when it never is."""
    hits = loss[loss < threshold]
    return float(hits.index[0]) if len(hits) else float("nan")


def _trial(task, steps: int, point: tuple[str, int]) -> tuple[dict, pd.Series]:
    """One (optimizer, seed) from near zero: its row and its loss curve."""
    rule, seed = point
    lr = RULES[rule]
    result = fit(
        _net("normal", seed),
        task,
        optimizer=rule,
        lr=lr,
        steps=steps,
        batch_size=BATCH,
        seed=seed,
        watch=False,
    )
    loss = result.history.series("loss")
    row = {
        "optimizer": rule,
        "lr": lr,
        "seed": seed,
        "escape_step": _escape_step(loss, ESCAPE_LOSS),
        "test_accuracy": float(result.metrics["test_accuracy"]),
    }
    return row, loss


def run(config: LabConfig) -> ExperimentResult:
    steps = config.pick(300, 1000)
    task = data.load("digits", seed=0)
    x, y = task.x_train[:PROBE], task.y_train[:PROBE]
    curv_rows = []
    for seed in config.track(config.seed_list, "saddle: curvature at init"):
        for init in ("normal", "xavier_normal"):
            low, grad = _at_init(_net(init, seed), task, x, y)
            curv_rows.append({"init": init, "seed": seed, "lambda_min": low, "grad_norm": grad})
    grid = [(rule, seed) for seed in config.seed_list for rule in RULES]
    trials = config.map(partial(_trial, task, steps), grid, "saddle")
    curves = {point: loss for point, (_, loss) in zip(grid, trials, strict=True)}
    rows = [row for row, _ in trials]
    at_init, runs = pd.DataFrame(curv_rows), pd.DataFrame(rows)
    surface = get_surface("saddle")
    paths = [run_trajectory(surface, rule) for rule in RULES]
    plane = pd.DataFrame(
        {
            "optimizer": [p.optimizer for p in paths],
            "lr": [p.lr for p in paths],
            "escape_step": [_escape_step(pd.Series(p.losses), ESCAPE_2D) for p in paths],
        }
    )

    claims = []
    near = at_init[at_init.init == "normal"]
    xavier = at_init[at_init.init == "xavier_normal"]
    low, grad, grad_x = (
        mean_spread(near.lambda_min),
        mean_spread(near.grad_norm),
        mean_spread(xavier.grad_norm),
    )
    claims.append(
        Claim(
            f"Near zero (weights N(0, {NEAR_ZERO}^2)) the {DEPTH}-layer linear net sits at a "
            "saddle: the Hessian has a negative eigenvalue and the gradient is under a tenth "
            "of the gradient at Xavier init.",
            held=low.high < 0 and grad.high < 0.1 * grad_x.low,
            numbers={"lambda_min": low, "grad norm near zero": grad, "grad norm xavier": grad_x},
            verdict=(
                f"lambda_min {low.mean:.3g} (max over seeds {low.high:.3g}); ||grad|| "
                f"{grad.mean:.2g} near zero vs {grad_x.mean:.2g} at Xavier init."
            ),
            central=True,
        )
    )
    budget = steps + 1  # a run that never escaped counts as the whole budget (a lower bound)
    escape = {r: runs[runs.optimizer == r].escape_step.fillna(budget).to_numpy() for r in RULES}
    spreads = {r: mean_spread(v) for r, v in escape.items()}
    faster = {r: bootstrap_ci(escape["sgd"] - escape[r]) for r in ("momentum", "adam")}
    claims.append(
        Claim(
            "Momentum and Adam leave the plateau sooner than plain SGD (fewer steps until the "
            f"training loss drops below {ESCAPE_LOSS}).",
            held=all(lo > 0 for lo, _ in faster.values()),
            numbers={
                **{f"{r} escape step": s for r, s in spreads.items()},
                **{f"sgd minus {r} (95% CI)": ci for r, ci in faster.items()},
            },
            verdict=(
                ", ".join(f"{r} {s.mean:.0f}" for r, s in spreads.items())
                + f" steps (budget {steps}; never = {budget}); held if the bootstrap interval "
                "of SGD's extra steps over each is above 0."
            ),
            central=True,
        )
    )
    never = int(runs.escape_step.isna().sum())
    claims.append(
        Claim(
            f"Every rule escapes within {steps} steps (the saddle slows, it does not trap).",
            held=never == 0,
            numbers={"runs": len(runs), "runs that never escaped": never},
            verdict=f"{never} of {len(runs)} runs stayed above loss {ESCAPE_LOSS}.",
        )
    )
    by = plane.set_index("optimizer").escape_step
    claims.append(
        Claim(
            "On the 2D saddle x^2 - y^2 started 1e-3 off the ridge, momentum and Adam escape "
            "(f < -1) in fewer steps than SGD.",
            held=bool(by["momentum"] < by["sgd"] and by["adam"] < by["sgd"]),
            numbers={r: float(by[r]) for r in RULES},
            verdict=", ".join(f"{r} {by[r]:.0f}" for r in RULES)
            + " steps (NaN: never); one deterministic path each.",
        )
    )

    figures = {
        "escape": _curve_figure(curves, config.seed_list),
        "playground": plot_trajectories(surface, paths),
    }
    captions = {
        "escape": f"Training loss of the {DEPTH}-layer linear net from a near-zero init "
        f"(mean over seeds): all start on the plateau at ln 10; the dashed line is the escape "
        f"level {ESCAPE_LOSS}. Learning rates: "
        + ", ".join(f"{r} {lr}" for r, lr in RULES.items())
        + ".",
        "playground": "The same rules on x^2 - y^2 from (1, 0.001) (`gs.playground`): each "
        "first slides down x to the saddle, where the tiny y-gradient grows e-fold slowly.",
    }
    return ExperimentResult(
        tables={"at_init": at_init, "runs": runs, "playground": plane},
        figures=figures,
        captions=captions,
        claims=claims,
        params={
            "depth": DEPTH,
            "width": WIDTH,
            "near-zero std": NEAR_ZERO,
            "optimizers (lr)": RULES,
            "batch": BATCH,
            "steps": steps,
            "seeds": config.seed_list,
            "task": "digits",
        },
    )


def _curve_figure(curves: dict, seeds: list[int]):
    fig = new_figure(None, 8.0, 4.0)
    ax = fig.subplots()
    for i, rule in enumerate(RULES):
        mean = pd.concat([curves[rule, s] for s in seeds], axis=1).mean(axis=1)
        smooth = mean.rolling(10, min_periods=1).mean()
        ax.plot(smooth.index, smooth.to_numpy(), color=f"C{i}", label=rule)
    ax.axhline(ESCAPE_LOSS, color="grey", ls="--")
    ax.axhline(float(np.log(10)), color="grey", lw=0.6)
    ax.set(xlabel="step", ylabel="training loss (10-step mean)")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return fig


EXPERIMENT = Experiment(
    name="saddle",
    title="Saddle points of a deep linear net",
    question=(
        "Does a deep linear net started near zero sit at a saddle (negative lambda_min, tiny "
        "gradient), and how fast do SGD, momentum and Adam escape it (Saxe et al. "
        "2014, Dauphin et al. 2014)?"
    ),
    run=run,
)
