"""Experiment 1, `sigmoid-product`: sigmoid' <= 1/4, and what a product of small factors does.

A common argument (Hochreiter 1991; Glorot & Bengio 2010, retold in many tutorials) runs:
the gradient reaching a neuron 50 layers down is a product of 50 sigmoid
derivatives, each in (0, 1/4]; a product of 50 U(0, 1) numbers is "never more than 1e-18".
We check the derivative bounds with autograd on a grid, draw the products, and compare the
bound (1/4)^n with the gradient measured in real n-layer sigmoid networks at init.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from gradsight import data, models
from gradsight.drawing import new_figure
from gradsight.lab.experiment import Claim, Experiment, ExperimentResult, LabConfig
from gradsight.lab.measure import linear_layers, preactivation_grad_norms
from gradsight.stats import mean_spread

# The seed's threshold and factor count.
THRESHOLD = 1e-18
FACTORS = 50
# "About 1/4 per layer": the fitted per-layer factor of the measured gradient must lie here.
QUARTER_RANGE = (0.15, 0.30)
ACTIVATIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}
EXPECTED_MAX = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0}


def derivatives(z: torch.Tensor) -> dict[str, np.ndarray]:
    """f'(z) of each activation by autograd (float64), on the grid z."""
    out = {}
    for name, fn in ACTIVATIONS.items():
        zz = z.detach().clone().requires_grad_(True)
        fn(zz).sum().backward()  # d/dz_i sum_j f(z_j) = f'(z_i)
        out[name] = zz.grad.numpy()
    return out


def log10_products(seed: int, draws: int, max_n: int) -> np.ndarray:
    """log10 of the running products u_1 ... u_n of U(0, 1) numbers, (draws, max_n)."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(size=(draws, max_n))
    return np.cumsum(np.log10(u), axis=1)


def sigmoid_gradients(seed: int, depths: list[int], task) -> pd.DataFrame:
    """Measured ||dL/dz_1|| / ||dL/dz_{n+1}|| across n sigmoid layers, and its bounds.

    The error crossing one layer is dL/dz_l = sigmoid'(z_l) * W_{l+1}^T dL/dz_{l+1}, so
    ||dL/dz_l|| <= (1/4) ||W_{l+1}||_2 ||dL/dz_{l+1}||: the product over the n layers is a
    rigorous bound; (1/4)^n alone is the seed's (it ignores the weights). Float64, so that
    ratios below 1e-38 do not underflow.
    """
    x, y = task.x_train[:256].double(), task.y_train[:256]
    rows = []
    for n in depths:
        model = models.mlp(
            64, 10, depth=n + 2, width=64, activation="sigmoid", init="xavier_uniform", seed=seed
        ).double()
        norms = preactivation_grad_norms(model, x, y, task.loss_fn)  # (n + 2,)
        weights = [m.weight for _, m in linear_layers(model)][1 : n + 1]  # W_2 .. W_{n+1}
        spectral = [float(torch.linalg.matrix_norm(w.detach(), 2)) for w in weights]
        rows.append(
            {
                "seed": seed,
                "n": n,
                "ratio": float(norms[0] / norms[n]),
                "quarter_power": 0.25**n,
                "bound": float(np.prod([0.25 * s for s in spectral])),
            }
        )
    return pd.DataFrame(rows)


def per_layer_factor(frame: pd.DataFrame) -> float:
    """exp of the least-squares slope of log(ratio) against n (through all points)."""
    slope = np.polyfit(frame["n"], np.log(frame["ratio"]), 1)[0]
    return float(math.exp(slope))


def run(config: LabConfig) -> ExperimentResult:
    draws = config.pick(20_000, 200_000)
    depths = config.pick([1, 2, 4, 8, 12], [1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 25, 30])
    max_n = 60
    task = data.load("digits", seed=0)

    z = torch.linspace(-8.0, 8.0, 16_001, dtype=torch.float64)  # step 1e-3, 0 on the grid
    derivs = derivatives(z)
    deriv_rows = [
        {"activation": k, "max": float(d.max()), "argmax": float(z[int(d.argmax())])}
        for k, d in derivs.items()
    ]

    product_rows, gradient_frames, medians, fractions = [], [], [], []
    bands = []
    for seed in config.track(config.seed_list, "sigmoid-product"):
        logs = log10_products(seed, draws, max_n)  # (draws, max_n)
        quantiles = np.quantile(logs, [0.05, 0.5, 0.95], axis=0)  # (3, max_n)
        bands.append(quantiles)
        at_50 = logs[:, FACTORS - 1]
        medians.append(float(np.median(at_50)))
        fractions.append(float((at_50 > math.log10(THRESHOLD)).mean()))
        product_rows += [
            {"seed": seed, "n": n + 1, "q05": q[0], "median": q[1], "q95": q[2]}
            for n, q in enumerate(quantiles.T)
        ]
        gradient_frames.append(sigmoid_gradients(seed, depths, task))
    gradients = pd.concat(gradient_frames, ignore_index=True)
    products = pd.DataFrame(product_rows)

    claims = []
    ok = {
        k: abs(r["max"] - EXPECTED_MAX[k]) < 1e-12 and abs(r["argmax"]) < 1e-9
        for k, r in zip(ACTIVATIONS, deriv_rows, strict=True)
        if k != "relu"
    }
    claims.append(
        Claim(
            "sigmoid'(z) <= 1/4 and tanh'(z) <= 1, both largest at z = 0.",
            held=all(ok.values()),
            numbers={f"max {r['activation']}'": r["max"] for r in deriv_rows[:2]},
            verdict=(
                f"autograd on {len(z)} points in [-8, 8] (float64): max sigmoid' = "
                f"{deriv_rows[0]['max']:.15g}, max tanh' = {deriv_rows[1]['max']:.15g}, at z = 0."
            ),
            central=True,
        )
    )
    spread = mean_spread(medians)
    expected = -FACTORS * math.log10(math.e)  # E[log10 U] = -1/ln 10
    claims.append(
        Claim(
            f"The product of {FACTORS} U(0, 1) numbers is below 1e-18 in practice.",
            held=spread.high < math.log10(THRESHOLD),
            numbers={
                "median log10 product": spread,
                "expected log10 (theory)": expected,
                "draws per seed": draws,
            },
            verdict=(
                f"median product 10^{spread.mean:.2f} (10^{spread.low:.2f} to 10^{spread.high:.2f} "
                f"over {spread.n} seeds of {draws} draws); "
                f"E[log10] = -{FACTORS}/ln 10 = {expected:.2f}."
            ),
            central=True,
        )
    )
    frac = mean_spread(fractions)
    claims.append(
        Claim(
            f"The tutorial claim: over many tries, the product of {FACTORS} U(0, 1) numbers was "
            "never above "
            "1e-18.",
            held=frac.high == 0.0,
            numbers={"fraction above 1e-18": frac},
            verdict=(
                f"{100 * frac.mean:.1f}% of draws exceed 1e-18 ({100 * frac.low:.1f}% to "
                f"{100 * frac.high:.1f}% over seeds): typical, not a bound; -ln(product) is "
                f"Gamma({FACTORS}, 1), whose left tail reaches 18 ln 10."
            ),
        )
    )
    n_below = int((gradients["ratio"] <= gradients["bound"]).sum())
    claims.append(
        Claim(
            "The gradient crossing n sigmoid layers shrinks at least as fast as "
            "prod (1/4) ||W||_2 (the bound with the weights).",
            held=n_below == len(gradients),
            numbers={
                "ratio / bound (max)": float((gradients["ratio"] / gradients["bound"]).max()),
                "configurations": len(gradients),
            },
            verdict=(
                f"measured ratio <= bound in {n_below}"
                f" of {len(gradients)} (seed, n) pairs, Xavier-uniform nets of width 64 at init."
            ),
            central=True,
        )
    )
    factors = [per_layer_factor(g) for _, g in gradients.groupby("seed")]
    fs = mean_spread(factors)
    claims.append(
        Claim(
            "At Xavier init each sigmoid layer multiplies the back-propagated gradient by about "
            "1/4, so after n layers it is about (1/4)^n.",
            held=QUARTER_RANGE[0] <= fs.low and fs.high <= QUARTER_RANGE[1],
            numbers={
                "per-layer factor": fs,
                "ratio at largest n": mean_spread(gradients[gradients.n == max(depths)].ratio),
                "(1/4)^n at largest n": 0.25 ** max(depths),
            },
            verdict=(
                f"fitted factor {fs.mean:.3f} per layer ({fs.low:.3f} to {fs.high:.3f} over seeds; "
                f"held if within {QUARTER_RANGE}): sigmoid' averages below 1/4 over the units."
            ),
        )
    )

    figures = {
        "derivatives": _derivatives_figure(z.numpy(), derivs),
        "products": _products_figure(np.mean(bands, axis=0), gradients, max_n),
    }
    captions = {
        "derivatives": "Sigmoid, tanh and ReLU derivatives by autograd. sigmoid' never exceeds "
        "1/4 and tanh' never exceeds 1; both vanish for |z| beyond a few units (saturation).",
        "products": "log10 of a product of n U(0, 1) numbers (median and 5–95% band over draws) "
        "against the seed's 1e-18 line, the bound (1/4)^n, and the measured ratio of the "
        "gradient at the first hidden layer to the one n sigmoid layers later (nets at init).",
    }
    return ExperimentResult(
        tables={
            "derivatives": pd.DataFrame(deriv_rows),
            "products": products,
            "gradients": gradients,
        },
        figures=figures,
        captions=captions,
        claims=claims,
        params={
            "draws per seed": draws,
            "depths": depths,
            "seeds": config.seed_list,
            "net": "mlp width 64, sigmoid, xavier_uniform, digits batch of 256, float64",
        },
    )


def _derivatives_figure(z: np.ndarray, derivs: dict[str, np.ndarray]):
    fig = new_figure(None, 8.0, 3.6)
    left, right = fig.subplots(1, 2)
    zt = torch.from_numpy(z)
    for name, fn in ACTIVATIONS.items():
        left.plot(z, fn(zt).numpy(), label=name)
        right.plot(z, derivs[name], label=f"{name}'")
    right.axhline(0.25, color="grey", ls="--", lw=0.8)
    right.annotate("1/4", (z[0], 0.27), fontsize="small", color="grey")
    left.set(title="activation", xlabel="z", ylim=(-1.2, 2.0))
    right.set(title="derivative (autograd)", xlabel="z", ylim=(-0.05, 1.1))
    for ax in (left, right):
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    return fig


def _products_figure(band: np.ndarray, gradients: pd.DataFrame, max_n: int):
    fig = new_figure(None, 8.0, 4.2)
    ax = fig.subplots()
    n = np.arange(1, max_n + 1)
    ax.fill_between(n, band[0], band[2], alpha=0.25, label="product of n U(0,1): 5–95%")
    ax.plot(n, band[1], label="product of n U(0,1): median")
    ax.plot(n, n * math.log10(0.25), "k--", lw=1, label="(1/4)^n")
    mean = gradients.groupby("n")["ratio"].apply(lambda r: np.log10(r).mean())
    ax.plot(mean.index, mean.values, "o-", color="C3", label="measured gradient ratio, sigmoid net")
    ax.axhline(math.log10(THRESHOLD), color="grey", ls=":", label="1e-18")
    ax.axvline(FACTORS, color="grey", lw=0.6)
    ax.set(xlabel="n (factors, or sigmoid layers)", ylabel="log10 value")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return fig


EXPERIMENT = Experiment(
    name="sigmoid-product",
    title="sigmoid' <= 1/4 and the product of many small numbers",
    question=(
        "Is sigmoid' really at most 1/4, is a product of 50 U(0,1) numbers really below 1e-18, "
        "and does the gradient through n sigmoid layers really shrink like (1/4)^n "
        "(Hochreiter 1991; Glorot & Bengio 2010)?"
    ),
    run=run,
)
