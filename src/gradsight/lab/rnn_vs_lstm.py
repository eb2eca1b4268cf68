"""Experiment 7, `rnn-vs-lstm`: long-range dependencies, vanilla RNN against LSTM.

The adding problem (Hochreiter & Schmidhuber 1997): a sequence of T random numbers, two of
them marked; the target is their sum. Predicting the constant E[y] = 1 gives the baseline
MSE Var(y) = 2/12 = 0.167. The error reaching h_t from the loss at step T passes through
T - t Jacobians dh_{s+1}/dh_s; for a tanh RNN their product shrinks geometrically
(Bengio et al. 1994; Pascanu et al. 2013), while the LSTM's additive cell state carries it
(Hochreiter & Schmidhuber 1997). We train both cells at several T and measure ||dL/dh_t|| against t.
"""

from __future__ import annotations

import copy
from functools import partial

import numpy as np
import pandas as pd
import torch

from gradsight import data, models
from gradsight.drawing import log_plot, new_figure
from gradsight.lab.claims import ClaimSpec, judge_all
from gradsight.lab.experiment import Claim, Experiment, Figures, LabConfig, Measured
from gradsight.stats import Spread, mean_and_range, spread_where
from gradsight.train import fit

CELLS = ("rnn", "lstm")
HIDDEN = 32
BATCH = 64
LR = 0.01  # Adam
PROBE = 256
# Var(y) of y = u1 + u2 with u ~ U(0, 1): the MSE of predicting the mean.
BASELINE = 2.0 / 12.0
# "Solved": MSE below this fraction of the baseline; "near the baseline": above this one.
SOLVED = 0.2
NEAR = 0.6
# At the longest T, the RNN's ratio ||dL/dh_1|| / ||dL/dh_T|| at init is below this fraction
# of the LSTM's; after training, a cell "carries" the error back when its ratio exceeds CARRIED.
FADE_FACTOR = 0.1
CARRIED = 0.1

SHORT_SOLVED = ClaimSpec(
    "short-solved",
    "At T = {length} both cells solve the adding problem (test MSE below {solved:.0%} of the "
    "{baseline:.3f} baseline).",
    rule="every seed of both cells < {solved:g} x baseline",
    control="varied: the cell (vanilla RNN or LSTM), at the shortest T; fixed: hidden size, "
    "Adam rate, batch, steps, seeds",
)
LONG_ONLY_LSTM = ClaimSpec(
    "long-only-lstm",
    "At T = {length} the vanilla RNN stays near the {baseline:.3f} baseline (MSE above "
    "{near:.0%} of it) while the LSTM solves it (below {solved:.0%}).",
    rule="every RNN seed > {near:g} x baseline and every LSTM seed < {solved:g} x baseline",
    central=True,
    control="varied: the cell, at the longest T; fixed: hidden size, Adam rate, batch, steps, "
    "seeds",
)
FADES_AT_INIT = ClaimSpec(
    "fades-at-init",
    "The error reaching the first step fades far faster through the RNN: at T = {length} its "
    "||dL/dh_1|| / ||dL/dh_T|| at init is under {factor:g} times the LSTM's.",
    rule="the RNN's largest ratio < {factor:g} x the LSTM's smallest",
    central=True,
    control="varied: the cell, at the longest T, at init; fixed: hidden size, the probe batch, "
    "seeds",
)
CARRIES_TRAINED = ClaimSpec(
    "carries-trained",
    "After training, the LSTM carries the error back to t = 1 (ratio above {carried:g} at "
    "T = {length}) and the RNN does not (below {carried:g}).",
    rule="every LSTM seed > {carried:g} and every RNN seed < {carried:g}",
    control="varied: the cell, at the longest T, after training; fixed: hidden size, Adam "
    "rate, batch, steps, the probe batch, seeds",
    second_look="No confound found: both cells share the task, hidden size, Adam rate, steps "
    "and probe batch. The rule fails on {failed} side: the LSTM's lowest ratio over seeds is "
    "{lstm_low:.3g}, the RNN's highest {rnn_high:.3g}, against {carried:g}.",
)


def temporal_grad_norms(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """||dL/dh_t|| for t = 1..T on one batch (the total derivative through the recurrence).

    L is the mean squared error of the output read from h_T; `forward(x, return_hidden=True)`
    returns the h_t of the graph, so autograd gives dL/dh_t = sum over paths via h_{t+1}.
    Measured on a float64 copy of the model: through 100 steps the norms fall below float32's
    smallest number (1e-45), and a ratio of two zeros says nothing.
    """
    model = copy.deepcopy(model).double()
    out, hiddens = model(x.double(), return_hidden=True)
    loss = torch.nn.functional.mse_loss(out, y.double())
    grads = torch.autograd.grad(loss, hiddens)
    return np.array([float(g.norm()) for g in grads])  # (T,)


def _trial(tasks: dict, steps: int, point: tuple[int, str, int]) -> tuple[dict, tuple]:
    """One (length, cell, seed): its row and its temporal gradient norms at init and trained."""
    length, cell, seed = point
    task = tasks[length]
    x, y = task.x_train[:PROBE], task.y_train[:PROBE]
    model = models.rnn(2, HIDDEN, 1, cell=cell, seed=seed)
    at_init = temporal_grad_norms(model, x, y)
    result = fit(
        model,
        task,
        optimizer="adam",
        lr=LR,
        steps=steps,
        batch_size=BATCH,
        seed=seed,
        watch=False,
    )
    trained = temporal_grad_norms(model, x, y)
    row = {
        "length": length,
        "cell": cell,
        "seed": seed,
        "test_mse": float(result.metrics["test_mse"]),
        "ratio_init": float(at_init[0] / at_init[-1]),
        "ratio_trained": float(trained[0] / trained[-1]),
        "diverged": bool(result.metrics["diverged"]),
    }
    return row, (at_init, trained)


def _runs(config: LabConfig, lengths: list[int], steps: int):
    grid = [(t, c, s) for t in lengths for c in CELLS for s in config.seed_list]
    tasks = {t: data.load("adding", length=t, seed=0) for t in lengths}
    trials = config.map(partial(_trial, tasks, steps), grid, "rnn-vs-lstm")
    flows = {point: flow for point, (_, flow) in zip(grid, trials, strict=True)}
    return pd.DataFrame([row for row, _ in trials]), flows


def measure(config: LabConfig) -> Measured:
    """Both cells at every length T: temporal gradient flow at init and trained."""
    lengths = config.pick([10, 30], [10, 50, 100])
    steps = config.pick(400, 2000)
    frame, flows = _runs(config, lengths, steps)
    return Measured(
        tables={"runs": frame},
        params={
            "lengths T": lengths,
            "cells": list(CELLS),
            "hidden": HIDDEN,
            "optimizer": f"adam lr {LR}, batch {BATCH}",
            "steps": steps,
            "seeds": config.seed_list,
            "task": "adding",
        },
        data={"flows": flows, "seeds": config.seed_list},
    )


def _cells(m: Measured, length: int, column: str = "test_mse") -> tuple[Spread, Spread]:
    """The RNN's and the LSTM's spread over seeds of `column` at T = `length`."""
    frame = m.tables["runs"]
    return tuple(spread_where(frame, column, cell=c, length=length) for c in CELLS)


def short_solved(m: Measured) -> Claim:
    short = min(m.params["lengths T"])
    rnn, lstm = _cells(m, short)
    return SHORT_SOLVED.judge(
        max(rnn.high, lstm.high) < SOLVED * BASELINE,
        {"rnn": rnn, "lstm": lstm, "baseline": BASELINE},
        f"test MSE rnn {rnn.mean:.4f}, lstm {lstm.mean:.4f} at T = {short}",
        length=short,
        solved=SOLVED,
        baseline=BASELINE,
    )


def long_only_lstm(m: Measured) -> Claim:
    long = max(m.params["lengths T"])
    rnn, lstm = _cells(m, long)
    return LONG_ONLY_LSTM.judge(
        rnn.low > NEAR * BASELINE and lstm.high < SOLVED * BASELINE,
        {"rnn": rnn, "lstm": lstm, "baseline": BASELINE},
        f"test MSE rnn {rnn.mean:.3f} (min over seeds {rnn.low:.3f}), lstm {lstm.mean:.4f} "
        f"(max {lstm.high:.4f}) after {m.params['steps']} Adam steps",
        length=long,
        near=NEAR,
        solved=SOLVED,
        baseline=BASELINE,
    )


def error_fades_at_init(m: Measured) -> Claim:
    long = max(m.params["lengths T"])
    rnn, lstm = _cells(m, long, "ratio_init")
    return FADES_AT_INIT.judge(
        rnn.high < FADE_FACTOR * lstm.low,
        {"rnn": rnn, "lstm": lstm},
        f"ratio at init: rnn {rnn.mean:.2e} (max {rnn.high:.2e}), lstm {lstm.mean:.2e} (min "
        f"{lstm.low:.2e})",
        length=long,
        factor=FADE_FACTOR,
    )


def lstm_carries_trained(m: Measured) -> Claim:
    long = max(m.params["lengths T"])
    rnn, lstm = _cells(m, long, "ratio_trained")
    return CARRIES_TRAINED.judge(
        lstm.low > CARRIED and rnn.high < CARRIED,
        {"rnn": rnn, "lstm": lstm},
        f"ratio after training: rnn {rnn.mean:.2e}, lstm {lstm.mean:.2e}",
        length=long,
        carried=CARRIED,
        failed="the LSTM's" if lstm.low <= CARRIED else "the RNN's",
        lstm_low=lstm.low,
        rnn_high=rnn.high,
    )


CHECKS = (short_solved, long_only_lstm, error_fades_at_init, lstm_carries_trained)


def claims(m: Measured) -> list[Claim]:
    """The claims of `CHECKS`, judged on the measurements."""
    return judge_all(CHECKS, m)


def figures(m: Measured) -> Figures:
    """Test MSE against T, and the temporal gradient flow at the longest T."""
    long, steps = max(m.params["lengths T"]), m.params["steps"]
    drawn = {
        "mse": _mse_figure(m.tables["runs"]),
        "temporal_flow": _flow_figure(m.data["flows"], long, m.data["seeds"]),
    }
    captions = {
        "mse": f"Test MSE on the adding problem after {steps} Adam steps against T (mean over "
        f"seeds, bars: min to max); the dashed line is the constant baseline {BASELINE:.3f}.",
        "temporal_flow": f"||dL/dh_t|| against t at T = {long}, relative to t = T (mean over "
        "seeds), at init (solid) and after training (dashed): the RNN's error falls "
        "geometrically on its way back, the LSTM's holds.",
    }
    return drawn, captions


def _mse_figure(frame: pd.DataFrame):
    fig = new_figure(None, 7.0, 3.8)
    ax = fig.subplots()
    for i, cell in enumerate(CELLS):
        mean, yerr = mean_and_range(frame[frame.cell == cell].groupby("length")["test_mse"])
        ax.errorbar(
            mean.index,
            mean,
            yerr=yerr,
            fmt="o-",
            color=f"C{i}",
            capsize=3,
            label=cell,
        )
    ax.axhline(BASELINE, color="grey", ls="--", label="baseline")
    ax.set(yscale="log", xlabel="sequence length T", ylabel="test MSE")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return fig


def _flow_figure(flows: dict, length: int, seeds: list[int]):
    fig = new_figure(None, 8.0, 3.8)
    ax = fig.subplots()
    t = np.arange(1, length + 1)
    for i, cell in enumerate(CELLS):
        for k, style in enumerate(("-", "--")):
            rel = np.mean(
                [flows[length, cell, s][k] / flows[length, cell, s][k][-1] for s in seeds], 0
            )
            label = f"{cell}, {'init' if k == 0 else 'trained'}"
            log_plot(ax, t, rel, style, color=f"C{i}", label=label)
    ax.set(yscale="log", xlabel="time step t", ylabel="||dL/dh_t|| / ||dL/dh_T||")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return fig


EXPERIMENT = Experiment(
    name="rnn-vs-lstm",
    title="Vanilla RNN against LSTM on the adding problem",
    question=(
        "Does a vanilla RNN fail the adding problem at long T, where its error fades back "
        "through time, while an LSTM solves it (Bengio et al. 1994, Hochreiter & "
        "Schmidhuber 1997)?"
    ),
    measure=measure,
    claims=claims,
    figures=figures,
)
