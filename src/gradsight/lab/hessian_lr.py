"""Experiment 15, `hessian-lr`: lr = 1 / lambda_max, and the edge of stability.

On a quadratic, gradient descent is stable only for lr < 2 / lambda_max, and lr =
1 / lambda_max is the step that removes the sharpest direction's error (LeCun, Simard &
Pearlmutter 1993). We train with `gs.fit(schedule="hessian")` (lambda_max re-estimated by
Lanczos every few steps) against a constant lr tuned by a small sweep. Under full-batch GD
with a constant lr, Cohen et al. (2021) found the sharpness lambda_max rising until it
reaches 2 / lr and hovering there (the edge of stability); we measure it with
`gs.fit(watch={"curvature_every": N})`. As in their main experiments the loss is the MSE
against one-hot targets (with cross-entropy the sharpness falls late in training as the
margins grow, which they also report).
"""

from __future__ import annotations

import dataclasses
from functools import partial

import pandas as pd
import torch

from gradsight import data, models
from gradsight.drawing import log_plot, new_figure
from gradsight.lab.claims import ClaimSpec, judge_all
from gradsight.lab.experiment import Claim, Experiment, Figures, LabConfig, Measured
from gradsight.stats import mean_spread, spread_where
from gradsight.train import fit

WIDTH = 32
DEPTH = 3
SWEEP = (0.5, 1.0, 2.0)  # constant lrs of full-batch GD; the best is "tuned"
EOS_LR = 2.0  # the constant lr whose sharpness is tracked (2 / lr = 1.0)
EVERY = 25  # steps between lambda_max estimates (schedule and watch)
NO_STATS = {"every": 0, "updates_every": 0, "activations_every": 0}
EDGE = 2.0 / EOS_LR  # the edge of stability of GD at EOS_LR
# The edge is reached when the sharpness's late maximum is at least EDGE_REACHED x EDGE on
# every seed, having risen at least RISE times from its minimum; it settles when its maximum
# after the first estimate stays below SETTLE_MAX x EDGE.
EDGE_REACHED = 0.9
RISE = 1.1
SETTLE_MAX = 1.5

INVERSE_SHARPNESS = ClaimSpec(
    "inverse-sharpness",
    "Full-batch GD with lr = 1 / lambda_max (re-estimated every {every} steps, no tuning) "
    "reaches a training loss no higher than the best constant lr of the sweep {sweep}.",
    rule="its mean loss is at most the best constant lr's",
    central=True,
    control="varied: the rate (1 / lambda_max re-estimated, against each constant of the "
    "sweep); fixed: full-batch GD, net, MSE on one-hot targets, steps, seeds",
    second_look="Confound checked and controlled: the constant rates are tuned on the same "
    "net, loss, steps and seeds, and the schedule's lambda_max is re-estimated every {every} "
    "steps. Controlled, the best constant ({tuned:g}) still wins: GD is fastest near the edge "
    "of stability, 2 / lambda_max, where the sharpest direction oscillates while the flat ones "
    "move twice as far per step; 1 / lambda_max is only the quadratic's one-step optimum along "
    "the sharpest direction.",
)
SHARPNESS_RISES = ClaimSpec(
    "sharpness-rises",
    "Under full-batch GD at constant lr {lr:g}, the sharpness lambda_max rises towards "
    "2 / lr = {edge:.2f} (edge of stability): in the second half of training it reaches at "
    "least {reached:.0%} of 2 / lr, at least {rise:g} times its lowest value.",
    rule="every seed's late maximum >= {reached:g} x 2/lr and rise >= x{rise:g}",
    central=True,
    control="varied: training time; fixed: the constant rate, full-batch GD, net, MSE on "
    "one-hot targets, seeds",
)
SHARPNESS_BOUNDED = ClaimSpec(
    "sharpness-bounded",
    "Without diverging, lambda_max does not settle far beyond 2 / lr: its maximum after the "
    "first estimate stays below {settle:g} x 2 / lr.",
    rule="no run diverges and every seed's maximum after init < {settle:g} x 2/lr",
    control="varied: training time; fixed: the constant rate, full-batch GD, net, MSE on "
    "one-hot targets, seeds",
)


def _task():
    """Digits with MSE against one-hot targets (Cohen et al. 2021's loss)."""
    task = data.load("digits", seed=0)

    def one_hot(y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(y, 10).float()  # (N, 10)

    return dataclasses.replace(
        task,
        y_train=one_hot(task.y_train),
        y_test=one_hot(task.y_test),
        loss="mse",
        metric="mse",
        description="digits, MSE on one-hot targets",
    )


def _net(seed: int) -> torch.nn.Module:
    return models.mlp(
        64, 10, depth=DEPTH, width=WIDTH, activation="tanh", init="xavier_normal", seed=seed
    )


def _trial(
    task, steps: int, point: tuple[float | str, int]
) -> tuple[dict, pd.Series, pd.Series | None]:
    """One (lr, seed): its row, its loss curve and (at EOS_LR) its lambda_max series."""
    lr, seed = point
    watch = {**NO_STATS, "curvature_every": EVERY} if lr == EOS_LR else False
    options = (
        {"schedule": "hessian", "schedule_options": {"c": 1.0, "every": EVERY}}
        if lr == "hessian"
        else {"lr": lr}
    )
    result = fit(
        _net(seed),
        task,
        optimizer="sgd",
        steps=steps,
        batch_size=None,  # full-batch gradient descent
        seed=seed,
        watch=watch,
        **options,
    )
    row = {
        "lr": str(lr),
        "seed": seed,
        "train_loss": float(result.metrics["train_loss"]),
        "test_mse": float(result.metrics["test_mse"]),
        "diverged": bool(result.metrics["diverged"]),
        "final_lr": float(result.history.series("lr").iloc[-1]),
    }
    sharpness = result.history.series("curv/lambda_max") if lr == EOS_LR else None
    return row, result.history.series("loss"), sharpness


def measure(config: LabConfig) -> Measured:
    """Full-batch GD at each constant lr and at lr = 1 / lambda_max, sharpness at EOS_LR."""
    steps = config.pick(300, 1500)
    runs = [(lr, s) for lr in (*SWEEP, "hessian") for s in config.seed_list]
    trials = config.map(partial(_trial, _task(), steps), runs, "hessian-lr")
    curves = {point: curve for point, (_, curve, _) in zip(runs, trials, strict=True)}
    sharpness = {
        seed: sharp for (lr, seed), (*_, sharp) in zip(runs, trials, strict=True) if lr == EOS_LR
    }
    return Measured(
        tables={"runs": pd.DataFrame([row for row, _, _ in trials])},
        params={
            "model": f"tanh MLP, depth {DEPTH}, width {WIDTH}, Xavier init",
            "constant lrs": list(SWEEP),
            "hessian schedule": f"c = 1, every {EVERY} steps",
            "edge-of-stability lr": EOS_LR,
            "steps": steps,
            "seeds": config.seed_list,
            "task": "digits, MSE on one-hot targets, full batch",
        },
        data={"curves": curves, "sharpness": sharpness},
    )


def inverse_sharpness(m: Measured) -> Claim:
    frame = m.tables["runs"]
    final = frame.groupby("lr").train_loss.mean()
    tuned = min(SWEEP, key=lambda lr: final[str(lr)])
    hess = spread_where(frame, "train_loss", lr="hessian")
    best = spread_where(frame, "train_loss", lr=str(tuned))
    return INVERSE_SHARPNESS.judge(
        hess.mean <= best.mean,
        {"hessian schedule": hess, f"constant lr {tuned}": best},
        f"final training MSE {hess.mean:.3g} with 1/lambda_max vs {best.mean:.3g} with the "
        f"tuned constant lr {tuned} after {m.params['steps']} steps (mean over seeds)",
        every=EVERY,
        sweep=list(SWEEP),
        tuned=tuned,
    )


def sharpness_rises(m: Measured) -> Claim:
    sharpness = m.data["sharpness"].values()
    rise = mean_spread([float(s.iloc[len(s) // 2 :].max() / s.iloc[1:].min()) for s in sharpness])
    late = mean_spread([float(s.iloc[len(s) // 2 :].max()) for s in sharpness])
    return SHARPNESS_RISES.judge(
        late.low >= EDGE_REACHED * EDGE and rise.low >= RISE,
        {"late max lambda_max": late, "rise (late max / min)": rise, "2/lr": EDGE},
        f"late max lambda_max {late.mean:.3f} (min over seeds {late.low:.3f}) against 2/lr = "
        f"{EDGE:.2f}; risen x{rise.mean:.2f} from its minimum",
        lr=EOS_LR,
        edge=EDGE,
        reached=EDGE_REACHED,
        rise=RISE,
    )


def sharpness_bounded(m: Measured) -> Claim:
    sharpness, frame = m.data["sharpness"].values(), m.tables["runs"]
    after_init = max(float(s.iloc[1:].max()) for s in sharpness)
    return SHARPNESS_BOUNDED.judge(
        after_init < SETTLE_MAX * EDGE and not frame[frame.lr == str(EOS_LR)].diverged.any(),
        {"max lambda_max (incl. init)": mean_spread([float(s.max()) for s in sharpness])},
        f"max after init {after_init:.3f} vs {SETTLE_MAX:g} x 2/lr = {SETTLE_MAX * EDGE:.2f}",
        settle=SETTLE_MAX,
    )


CHECKS = (inverse_sharpness, sharpness_rises, sharpness_bounded)


def claims(m: Measured) -> list[Claim]:
    """The claims of `CHECKS`, judged on the measurements."""
    return judge_all(CHECKS, m)


def figures(m: Measured) -> Figures:
    """The sharpness at EOS_LR, and every run's loss."""
    drawn = {
        "sharpness": _sharpness_figure(m.data["sharpness"], EDGE),
        "loss": _loss_figure(m.data["curves"], m.params["seeds"]),
    }
    captions = {
        "sharpness": f"lambda_max (Lanczos every {EVERY} steps) during full-batch GD at lr "
        f"{EOS_LR}, one line per seed; the dashed line is 2 / lr: after the first drop the "
        "sharpness climbs to it and hovers there (Cohen et al. 2021).",
        "loss": "Training MSE (mean over seeds) of each constant lr and of lr = 1 / lambda_max.",
    }
    return drawn, captions


def _sharpness_figure(sharpness: dict, edge: float):
    fig = new_figure(None, 8.0, 4.0)
    ax = fig.subplots()
    for i, (seed, series) in enumerate(sharpness.items()):
        ax.plot(series.index, series.to_numpy(), "o-", ms=3, color=f"C{i}", label=f"seed {seed}")
    ax.axhline(edge, color="grey", ls="--", label="2 / lr")
    ax.set(xlabel="step", ylabel="lambda_max")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def _loss_figure(curves: dict, seeds: list[int]):
    fig = new_figure(None, 8.0, 4.0)
    ax = fig.subplots()
    for i, lr in enumerate((*SWEEP, "hessian")):
        mean = pd.concat([curves[lr, s] for s in seeds], axis=1).mean(axis=1)
        label = "1 / lambda_max" if lr == "hessian" else f"lr {lr}"
        log_plot(ax, mean.index, mean.to_numpy(), color=f"C{i}", label=label)
    ax.set(yscale="log", xlabel="step", ylabel="training MSE")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return fig


EXPERIMENT = Experiment(
    name="hessian-lr",
    title="lr = 1 / lambda_max and the edge of stability",
    question=(
        "Does lr = 1 / lambda_max match a tuned constant lr, and does full-batch GD drive the "
        "sharpness lambda_max up to 2 / lr (LeCun et al. 1993, Cohen et al. 2021)?"
    ),
    measure=measure,
    claims=claims,
    figures=figures,
)
