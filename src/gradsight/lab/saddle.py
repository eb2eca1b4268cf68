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
from gradsight.lab.claims import ClaimSpec, judge_all, mean_interval
from gradsight.lab.experiment import Claim, Experiment, Figures, LabConfig, Measured
from gradsight.playground import get_surface, plot_trajectories, run_trajectory
from gradsight.stats import mean_spread, spread_where
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
# Near zero the gradient is below this fraction of the gradient at Xavier init, on every seed.
GRAD_FRACTION = 0.1
# The rules claimed to leave the plateau sooner than SGD, and the interval of SGD's extra steps
# over each (`mean_interval`).
FASTER = ("momentum", "adam")
GAP_INTERVAL = "t"

AT_SADDLE = ClaimSpec(
    "at-saddle",
    "Near zero (weights N(0, {std:g}^2)) the {depth}-layer linear net sits at a saddle: the "
    "Hessian has a negative eigenvalue and the gradient is under {fraction:g} times the "
    "gradient at Xavier init.",
    rule="every seed's lambda_min < 0 and its gradient < {fraction:g} x the smallest at Xavier",
    central=True,
    control="varied: the init scale (near-zero normal against Xavier); fixed: the deep linear "
    "net, width, the probe batch, seeds (at init)",
)
ESCAPE_SOONER = ClaimSpec(
    "escape-sooner",
    "Momentum and Adam leave the plateau sooner than plain SGD (fewer steps until the training "
    "loss drops below {loss:g}).",
    rule="the {interval} of SGD's extra steps over each is above 0",
    central=True,
    control="varied: the update rule (SGD, momentum, Adam), each at a rate usual for it; "
    "fixed: near-zero init, net, batch, seeds",
)
EVERY_RULE_ESCAPES = ClaimSpec(
    "every-rule-escapes",
    "Every rule escapes within {steps} steps (the saddle slows, it does not trap).",
    rule="no run stays on the plateau",
    control="varied: the update rule, each at a rate usual for it; fixed: near-zero init, net, "
    "batch, step budget, seeds",
)
PLANE_SOONER = ClaimSpec(
    "plane-escape-sooner",
    "On the 2D saddle x^2 - y^2 started 1e-3 off the ridge, momentum and Adam escape "
    "(f < {level:g}) in fewer steps than SGD.",
    rule="both take fewer steps than SGD",
    control="varied: the update rule; fixed: the 2D saddle x^2 - y^2 and the start 1e-3 off "
    "the ridge",
)


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


def _curvature(config: LabConfig, task) -> pd.DataFrame:
    """lambda_min and ||grad|| at a near-zero init and at Xavier's, per seed."""
    x, y = task.x_train[:PROBE], task.y_train[:PROBE]
    rows = []
    for seed in config.track(config.seed_list, "saddle: curvature at init"):
        for init in ("normal", "xavier_normal"):
            low, grad = _at_init(_net(init, seed), task, x, y)
            rows.append({"init": init, "seed": seed, "lambda_min": low, "grad_norm": grad})
    return pd.DataFrame(rows)


def _plane() -> tuple[pd.DataFrame, list]:
    """Each rule on the 2D saddle: its escape step, and the paths."""
    paths = [run_trajectory(get_surface("saddle"), rule) for rule in RULES]
    plane = pd.DataFrame(
        {
            "optimizer": [p.optimizer for p in paths],
            "lr": [p.lr for p in paths],
            "escape_step": [_escape_step(pd.Series(p.losses), ESCAPE_2D) for p in paths],
        }
    )
    return plane, paths


def measure(config: LabConfig) -> Measured:
    """Curvature at init, each rule trained from near zero, and the rules on x^2 - y^2."""
    steps = config.pick(300, 1000)
    task = data.load("digits", seed=0)
    at_init = _curvature(config, task)
    grid = [(rule, seed) for seed in config.seed_list for rule in RULES]
    trials = config.map(partial(_trial, task, steps), grid, "saddle")
    curves = {point: loss for point, (_, loss) in zip(grid, trials, strict=True)}
    plane, paths = _plane()
    return Measured(
        tables={
            "at_init": at_init,
            "runs": pd.DataFrame([r for r, _ in trials]),
            "playground": plane,
        },
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
        data={"curves": curves, "paths": paths},
    )


def at_saddle(m: Measured) -> Claim:
    at_init = m.tables["at_init"]
    low = spread_where(at_init, "lambda_min", init="normal")
    grad = spread_where(at_init, "grad_norm", init="normal")
    grad_x = spread_where(at_init, "grad_norm", init="xavier_normal")
    return AT_SADDLE.judge(
        low.high < 0 and grad.high < GRAD_FRACTION * grad_x.low,
        {"lambda_min": low, "grad norm near zero": grad, "grad norm xavier": grad_x},
        f"lambda_min {low.mean:.3g} (max over seeds {low.high:.3g}); ||grad|| {grad.mean:.2g} "
        f"near zero vs {grad_x.mean:.2g} at Xavier init",
        std=NEAR_ZERO,
        depth=DEPTH,
        fraction=GRAD_FRACTION,
    )


def adaptive_escape_sooner(m: Measured) -> Claim:
    runs, steps = m.tables["runs"], m.params["steps"]
    budget = steps + 1  # a run that never escaped counts as the whole budget (a lower bound)
    escape = {r: runs[runs.optimizer == r].escape_step.fillna(budget).to_numpy() for r in RULES}
    spreads = {r: mean_spread(v) for r, v in escape.items()}
    faster = {r: mean_interval(escape["sgd"] - escape[r], GAP_INTERVAL) for r in FASTER}
    label = next(iter(faster.values()))[0]
    return ESCAPE_SOONER.judge(
        all(lo > 0 for _, (lo, _) in faster.values()),
        {
            **{f"{r} escape step": s for r, s in spreads.items()},
            **{f"sgd minus {r} ({lab})": ci for r, (lab, ci) in faster.items()},
        },
        ", ".join(f"{r} {s.mean:.0f}" for r, s in spreads.items())
        + f" steps (budget {steps}; never = {budget})",
        loss=ESCAPE_LOSS,
        interval=label,
    )


def every_rule_escapes(m: Measured) -> Claim:
    runs, steps = m.tables["runs"], m.params["steps"]
    never = int(runs.escape_step.isna().sum())
    return EVERY_RULE_ESCAPES.judge(
        never == 0,
        {"runs": len(runs), "runs that never escaped": never},
        f"{never} of {len(runs)} runs stayed above loss {ESCAPE_LOSS}",
        steps=steps,
    )


def plane_escape_sooner(m: Measured) -> Claim:
    by = m.tables["playground"].set_index("optimizer").escape_step
    return PLANE_SOONER.judge(
        bool(all(by[r] < by["sgd"] for r in FASTER)),
        {r: float(by[r]) for r in RULES},
        ", ".join(f"{r} {by[r]:.0f}" for r in RULES)
        + " steps (NaN: never); one deterministic path each",
        level=ESCAPE_2D,
    )


CHECKS = (at_saddle, adaptive_escape_sooner, every_rule_escapes, plane_escape_sooner)


def claims(m: Measured) -> list[Claim]:
    """The claims of `CHECKS`, judged on the measurements."""
    return judge_all(CHECKS, m)


def figures(m: Measured) -> Figures:
    """The loss curves from near zero, and the rules on the 2D saddle."""
    drawn = {
        "escape": _curve_figure(m.data["curves"], m.params["seeds"]),
        "playground": plot_trajectories(get_surface("saddle"), m.data["paths"]),
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
    return drawn, captions


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
    measure=measure,
    claims=claims,
    figures=figures,
)
