"""Experiment 11, `adam-bias-correction`: Adam's first steps with and without bias correction.

Adam's moments start at zero, so E[m_t] = E[g] (1 - b1^t) and E[v_t] = E[g^2] (1 - b2^t)
(Kingma & Ba 2015, section 3). Adam divides them by
(1 - b^t). Without the correction, the first moment alone is (1 - b1^t) times too small, but
the update m_t / sqrt(v_t) is divided by a second moment that is sqrt(1 - b2^t) too small:
on the same gradients the uncorrected step is (1 - b1^t) / sqrt(1 - b2^t) times Adam's,
0.1 / sqrt(0.001) = 3.16 at t = 1 with the default betas, about 6.5 at t = 10, and above 1
for every t (it tends to 1 from above as b2^t fades). The early uncorrected steps are larger,
not smaller. We feed both optimizers identical gradients to check the formula, then let each
follow its own trajectory.
"""

from __future__ import annotations

import copy
from functools import partial

import numpy as np
import pandas as pd
import torch

from gradsight import data, models
from gradsight.drawing import new_figure
from gradsight.lab.claims import ClaimSpec, judge_all, mean_interval
from gradsight.lab.experiment import Claim, Experiment, Figures, LabConfig, Measured
from gradsight.optim import AdamNoBiasCorrection
from gradsight.stats import mean_spread
from gradsight.train.batches import batches

BETAS = (0.9, 0.999)
LR = 1e-3
BATCH = 64
EARLY = 10  # "early steps": the first this many
TOLERANCE = 0.05  # relative error allowed between measured and predicted step ratios
MOMENT_TOLERANCE = 1e-4  # absolute error allowed between measured and predicted m_t ratios
# The interval of the mean early-step ratio over seeds (`mean_interval`).
GAIN_INTERVAL = "t"

FIRST_MOMENT = ClaimSpec(
    "first-moment",
    "Without bias correction the first moment m_t is (1 - b1^t) times the corrected one on the "
    "same gradients ({first:.1f} at t = 1, {last:.3f} at t = {steps}).",
    rule="every seed's largest deviation < {tolerance:g}",
    control="varied: bias correction on or off; fixed: the same gradients fed to both, betas, "
    "rate, seeds",
)
STEP_FORMULA = ClaimSpec(
    "step-formula",
    "On the same gradients the uncorrected step is (1 - b1^t) / sqrt(1 - b2^t) times Adam's "
    "(Kingma & Ba 2015, section 3), within {tolerance:.0%} for t <= {steps}.",
    rule="every seed's largest relative error < {tolerance:g}",
    central=True,
    control="varied: bias correction on or off; fixed: the same gradients fed to both, betas, "
    "rate, seeds",
)
FIRST_STEP_SMALLER = ClaimSpec(
    "first-step-smaller",
    "Since the uncorrected first moment is too small, the first uncorrected step is smaller "
    "than Adam's (the popular reading of the correction).",
    rule="every seed's ratio at t = 1 < 1",
    control="varied: bias correction on or off; fixed: the same gradients fed to both, betas, "
    "rate, seeds",
    second_look="No confound: both rules see identical gradients, so only the correction "
    "differs. The popular reading forgets the second moment: uncorrected, v_1 is (1 - b2) "
    "times too small, and dividing by its square root enlarges the step by more than the small "
    "first moment shrinks it, (1 - b1) / sqrt(1 - b2) times Adam's at t = 1.",
)
EARLY_STEPS_LARGER = ClaimSpec(
    "early-steps-larger",
    "On their own trajectories the uncorrected optimizer's first {early} steps are larger than "
    "Adam's on average (ratio of mean step norms above 1).",
    rule="the {interval} of the ratio lies above 1",
    central=True,
    control="varied: bias correction on or off, each on its own trajectory; fixed: net, task, "
    "betas, rate, batch, seeds",
)


def formula_ratio(t: np.ndarray, betas: tuple[float, float] = BETAS) -> np.ndarray:
    """Uncorrected / corrected step size on the same gradients: (1 - b1^t) / sqrt(1 - b2^t)."""
    b1, b2 = betas
    return (1 - b1**t) / np.sqrt(1 - b2**t)


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().ravel() for p in model.parameters()])


def _same_gradients(task, seed: int, steps: int) -> pd.DataFrame:
    """Both optimizers on identical gradients (those of the Adam trajectory)."""
    model = models.mlp(64, 10, depth=3, width=64, seed=seed)
    twin = copy.deepcopy(model)
    adam = torch.optim.Adam(model.parameters(), lr=LR, betas=BETAS)
    plain = AdamNoBiasCorrection(twin.parameters(), lr=LR, betas=BETAS)
    stream = batches(task.x_train, task.y_train, BATCH, seed)
    rows = []
    for t in range(1, steps + 1):
        x, y = next(stream)
        adam.zero_grad()
        task.loss_fn(model(x), y).backward()
        for p, q in zip(model.parameters(), twin.parameters(), strict=True):
            q.grad = p.grad.clone()  # the twin sees Adam's gradient, not its own
        before_a, before_p = _flat(model), _flat(twin)
        adam.step()
        plain.step()
        step_a = float((_flat(model) - before_a).norm())
        step_p = float((_flat(twin) - before_p).norm())
        m_a = torch.cat([adam.state[p]["exp_avg"].ravel() for p in model.parameters()])
        m_p = torch.cat([plain.state[q]["exp_avg"].ravel() for q in twin.parameters()])
        # torch's Adam stores the raw m_t; its corrected first moment is m_t / (1 - b1^t).
        m_hat = m_a / (1 - BETAS[0] ** t)
        rows.append(
            {
                "seed": seed,
                "t": t,
                "step_adam": step_a,
                "step_uncorrected": step_p,
                "step_ratio": step_p / step_a,
                "moment_ratio": float(m_p.norm() / m_hat.norm()),
            }
        )
    return pd.DataFrame(rows)


def _own_trajectories(task, seed: int, steps: int) -> pd.DataFrame:
    """Each optimizer on its own trajectory from the same init and batches: ||w_t - w_(t-1)||."""
    rows = []
    for name, cls in (("adam", torch.optim.Adam), ("uncorrected", AdamNoBiasCorrection)):
        model = models.mlp(64, 10, depth=3, width=64, seed=seed)
        opt = cls(model.parameters(), lr=LR, betas=BETAS)
        stream = batches(task.x_train, task.y_train, BATCH, seed)
        for t in range(1, steps + 1):
            x, y = next(stream)
            opt.zero_grad()
            loss = task.loss_fn(model(x), y)
            loss.backward()
            before = _flat(model)
            opt.step()
            rows.append(
                {
                    "optimizer": name,
                    "seed": seed,
                    "t": t,
                    "step": float((_flat(model) - before).norm()),
                    "loss": float(loss.detach()),
                }
            )
    return pd.DataFrame(rows)


def _seed_runs(task, steps: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seed `seed`'s runs: (`_same_gradients`, `_own_trajectories`)."""
    return _same_gradients(task, seed, steps), _own_trajectories(task, seed, steps)


def measure(config: LabConfig) -> Measured:
    """Each seed: both optimizers on identical gradients, then on their own trajectories."""
    steps = config.pick(50, 200)
    task = data.load("digits", seed=0)
    runs = config.map(partial(_seed_runs, task, steps), config.seed_list, "adam-bias-correction")
    return Measured(
        tables={
            "same_gradients": pd.concat([s for s, _ in runs]),
            "own_trajectories": pd.concat([o for _, o in runs]),
        },
        params={
            "betas": list(BETAS),
            "lr": LR,
            "batch": BATCH,
            "steps": steps,
            "model": "mlp depth 3 width 64",
            "task": "digits",
            "seeds": config.seed_list,
        },
    )


def first_moment(m: Measured) -> Claim:
    same, steps = m.tables["same_gradients"], m.params["steps"]
    moment = same.assign(err=(same.moment_ratio - (1 - BETAS[0] ** same.t)).abs())
    err = mean_spread(moment.groupby("seed")["err"].max())
    return FIRST_MOMENT.judge(
        err.high < MOMENT_TOLERANCE,
        {"max |measured - (1 - b1^t)| per seed": err},
        f"largest deviation from 1 - b1^t over t <= {steps}: {err.high:.1e}",
        first=1 - BETAS[0],
        last=1 - BETAS[0] ** steps,
        steps=steps,
        tolerance=MOMENT_TOLERANCE,
    )


def step_formula(m: Measured) -> Claim:
    same, steps = m.tables["same_gradients"], m.params["steps"]
    predicted = formula_ratio(np.arange(1, steps + 1))
    ratio = same.assign(rel=(same.step_ratio / formula_ratio(same.t.to_numpy()) - 1).abs())
    rel_err = mean_spread(ratio.groupby("seed")["rel"].max())
    return STEP_FORMULA.judge(
        rel_err.high < TOLERANCE,
        {"max relative error per seed": rel_err, "predicted at t=1": predicted[0]},
        f"measured ratio at t = 1: {same[same.t == 1].step_ratio.mean():.3f} (predicted "
        f"{predicted[0]:.3f}); largest relative error {rel_err.high:.1e}",
        tolerance=TOLERANCE,
        steps=steps,
    )


def first_step_smaller(m: Measured) -> Claim:
    same = m.tables["same_gradients"]
    first = same[same.t == 1].step_ratio
    return FIRST_STEP_SMALLER.judge(
        bool(first.max() < 1.0),
        {"step ratio at t=1": mean_spread(first)},
        f"uncorrected / Adam step at t = 1: {first.mean():.2f}: the second moment is too small "
        "as well, by sqrt(1 - b2^t), which outweighs it",
    )


def early_steps_larger(m: Measured) -> Claim:
    own = m.tables["own_trajectories"]
    early = own[own.t <= EARLY].groupby(["seed", "optimizer"])["step"].mean().unstack()
    gain = (early["uncorrected"] / early["adam"]).to_numpy()
    label, (low, high) = mean_interval(gain, GAIN_INTERVAL)
    return EARLY_STEPS_LARGER.judge(
        bool(low > 1.0),
        {"ratio": mean_spread(gain), label: (low, high)},
        f"mean step ratio {gain.mean():.2f} ({label}: {low:.2f} to {high:.2f})",
        early=EARLY,
        interval=label,
    )


CHECKS = (first_moment, step_formula, first_step_smaller, early_steps_larger)


def claims(m: Measured) -> list[Claim]:
    """The claims of `CHECKS`, judged on the measurements."""
    return judge_all(CHECKS, m)


def figures(m: Measured) -> Figures:
    """The step ratio on identical gradients, and the steps on each one's trajectory."""
    t = np.arange(1, m.params["steps"] + 1)
    drawn = {
        "step_ratio": _ratio_figure(m.tables["same_gradients"], t, formula_ratio(t)),
        "steps": _steps_figure(m.tables["own_trajectories"]),
    }
    captions = {
        "step_ratio": "Uncorrected / corrected step norm on identical gradients against t "
        "(points: each seed), the formula (1 - b1^t) / sqrt(1 - b2^t) (line) and the first "
        "moment's factor 1 - b1^t alone (dashed): the steps start 3.16 times larger, not smaller.",
        "steps": f"Step norm ||w_t - w_(t-1)|| of Adam and of Adam without bias correction on "
        f"their own trajectories (mean over seeds, band: min to max), lr {LR}.",
    }
    return drawn, captions


def _ratio_figure(same: pd.DataFrame, t: np.ndarray, predicted: np.ndarray):
    fig = new_figure(None, 7.0, 3.8)
    ax = fig.subplots()
    ax.plot(same.t, same.step_ratio, "o", ms=3, alpha=0.5, color="C0", label="measured")
    ax.plot(t, predicted, "-", color="C1", label="(1 - b1^t) / sqrt(1 - b2^t)")
    ax.plot(t, 1 - BETAS[0] ** t, "--", color="grey", label="1 - b1^t")
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set(xlabel="step t", ylabel="uncorrected / Adam step")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def _steps_figure(own: pd.DataFrame):
    fig = new_figure(None, 7.0, 3.8)
    ax = fig.subplots()
    for i, name in enumerate(("adam", "uncorrected")):
        stats = own[own.optimizer == name].groupby("t")["step"].agg(["mean", "min", "max"])
        ax.plot(stats.index, stats["mean"], color=f"C{i}", label=name)
        ax.fill_between(stats.index, stats["min"], stats["max"], color=f"C{i}", alpha=0.2)
    ax.set(yscale="log", xlabel="step t", ylabel="||w_t - w_(t-1)||")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return fig


EXPERIMENT = Experiment(
    name="adam-bias-correction",
    title="Adam's first steps with and without bias correction",
    question=(
        "How do Adam's first steps change without bias correction, where m_t is (1 - b1^t) "
        "too small and v_t is (1 - b2^t) too small (Kingma & Ba 2015)?"
    ),
    measure=measure,
    claims=claims,
    figures=figures,
)
