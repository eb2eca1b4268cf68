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
from gradsight.lab.claims import ClaimSpec, judge_all
from gradsight.lab.experiment import Claim, Experiment, Figures, LabConfig, Measured
from gradsight.lab.measure import linear_layers, preactivation_grad_norms
from gradsight.stats import mean_spread

# The argument's threshold and factor count.
THRESHOLD = 1e-18
FACTORS = 50
# Products are drawn up to this many factors (the figure's x-axis).
MAX_N = 60
# "About 1/4 per layer": the fitted per-layer factor of the measured gradient must lie here.
QUARTER_RANGE = (0.15, 0.30)
ACTIVATIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}
EXPECTED_MAX = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0}
# The autograd maximum must equal EXPECTED_MAX to this, at a grid point this close to 0.
MAX_TOLERANCE = 1e-12
ARGMAX_TOLERANCE = 1e-9

DERIVATIVE_BOUNDS = ClaimSpec(
    "derivative-bounds",
    "sigmoid'(z) <= {sigmoid:g} and tanh'(z) <= {tanh:g}, both largest at z = 0.",
    rule="each maximum is within {tol:g} of its bound, at |z| < {at:g}",
    central=True,
    control="varied: z over a fine grid; fixed: each derivative's formula, in float64 (no net, "
    "no training)",
)
TYPICALLY_BELOW = ClaimSpec(
    "typically-below",
    "The product of {factors} U(0, 1) numbers is below {threshold:g} in practice.",
    rule="every seed's median product is below {threshold:g}",
    central=True,
    control="varied: the seed of the U(0, 1) draws; fixed: the number of factors and of draws "
    "per seed",
)
NEVER_ABOVE = ClaimSpec(
    "never-above",
    "The tutorial claim: over many tries, the product of {factors} U(0, 1) numbers was never "
    "above {threshold:g}.",
    rule="no draw of any seed exceeds {threshold:g}",
    control="varied: the seed of the U(0, 1) draws; fixed: the number of factors and of draws "
    "per seed",
    second_look="No confound: the draws are float64 U(0, 1) numbers. The tutorial's never is a "
    "small-sample accident: -ln of the product of {factors} U(0, 1) numbers is "
    "Gamma({factors}, 1), so a fixed fraction of draws exceeds {threshold:g}, and more tries "
    "find more of them.",
)
WEIGHT_BOUND = ClaimSpec(
    "weight-bound",
    "The gradient crossing n sigmoid layers shrinks at least as fast as prod (1/4) ||W||_2 "
    "(the bound with the weights).",
    rule="the ratio is at most the bound in every (seed, n) pair",
    central=True,
    control="varied: the number of sigmoid layers crossed, and the seed; fixed: width 64, "
    "Xavier uniform init, one digits batch of 256, float64",
)
QUARTER_PER_LAYER = ClaimSpec(
    "quarter-per-layer",
    "At Xavier init each sigmoid layer multiplies the back-propagated gradient by about 1/4, "
    "so after n layers it is about (1/4)^n.",
    rule="every seed's fitted factor is within [{low:g}, {high:g}]",
    control="varied: the number of sigmoid layers crossed, and the seed; fixed: width 64, "
    "Xavier uniform init, one digits batch of 256, float64",
)


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
    rigorous bound; (1/4)^n alone is the argument's (it ignores the weights). Float64, so that
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


def measure(config: LabConfig) -> Measured:
    """Derivatives on a grid, products of U(0, 1) numbers, and gradients of sigmoid nets."""
    draws = config.pick(20_000, 200_000)
    depths = config.pick([1, 2, 4, 8, 12], [1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 25, 30])
    task = data.load("digits", seed=0)
    z = torch.linspace(-8.0, 8.0, 16_001, dtype=torch.float64)  # step 1e-3, 0 on the grid
    derivs = derivatives(z)
    deriv_rows = [
        {"activation": k, "max": float(d.max()), "argmax": float(z[int(d.argmax())])}
        for k, d in derivs.items()
    ]
    product_rows, gradient_frames, bands, at_factors = [], [], [], []
    for seed in config.track(config.seed_list, "sigmoid-product"):
        logs = log10_products(seed, draws, MAX_N)  # (draws, MAX_N)
        quantiles = np.quantile(logs, [0.05, 0.5, 0.95], axis=0)  # (3, MAX_N)
        bands.append(quantiles)
        at_factors.append(logs[:, FACTORS - 1])
        product_rows += [
            {"seed": seed, "n": n + 1, "q05": q[0], "median": q[1], "q95": q[2]}
            for n, q in enumerate(quantiles.T)
        ]
        gradient_frames.append(sigmoid_gradients(seed, depths, task))
    return Measured(
        tables={
            "derivatives": pd.DataFrame(deriv_rows),
            "products": pd.DataFrame(product_rows),
            "gradients": pd.concat(gradient_frames, ignore_index=True),
        },
        params={
            "draws per seed": draws,
            "depths": depths,
            "seeds": config.seed_list,
            "net": "mlp width 64, sigmoid, xavier_uniform, digits batch of 256, float64",
        },
        data={
            "z": z.numpy(),
            "derivatives": derivs,
            "band": np.mean(bands, axis=0),
            # log10 of each seed's products of FACTORS numbers, (draws,) per seed
            "at_factors": at_factors,
        },
    )


def derivative_bounds(m: Measured) -> Claim:
    rows = m.tables["derivatives"].set_index("activation")
    ok = [
        abs(rows.loc[k, "max"] - EXPECTED_MAX[k]) < MAX_TOLERANCE
        and abs(rows.loc[k, "argmax"]) < ARGMAX_TOLERANCE
        for k in ("sigmoid", "tanh")
    ]
    sig, tanh = rows.loc["sigmoid", "max"], rows.loc["tanh", "max"]
    return DERIVATIVE_BOUNDS.judge(
        all(ok),
        {"max sigmoid'": sig, "max tanh'": tanh},
        f"autograd on {len(m.data['z'])} points in [-8, 8] (float64): max sigmoid' = "
        f"{sig:.15g}, max tanh' = {tanh:.15g}",
        sigmoid=EXPECTED_MAX["sigmoid"],
        tanh=EXPECTED_MAX["tanh"],
        tol=MAX_TOLERANCE,
        at=ARGMAX_TOLERANCE,
    )


def typically_below(m: Measured) -> Claim:
    spread = mean_spread([float(np.median(a)) for a in m.data["at_factors"]])
    expected = -FACTORS * math.log10(math.e)  # E[log10 U] = -1/ln 10
    draws = m.params["draws per seed"]
    return TYPICALLY_BELOW.judge(
        spread.high < math.log10(THRESHOLD),
        {
            "median log10 product": spread,
            "expected log10 (theory)": expected,
            "draws per seed": draws,
        },
        f"median product 10^{spread.mean:.2f} (10^{spread.low:.2f} to 10^{spread.high:.2f} "
        f"over {spread.n} seeds of {draws} draws); E[log10] = -{FACTORS}/ln 10 = {expected:.2f}",
        factors=FACTORS,
        threshold=THRESHOLD,
    )


def never_above(m: Measured) -> Claim:
    frac = mean_spread([float((a > math.log10(THRESHOLD)).mean()) for a in m.data["at_factors"]])
    return NEVER_ABOVE.judge(
        frac.high == 0.0,
        {f"fraction above {THRESHOLD:g}": frac},
        f"{100 * frac.mean:.1f}% of draws exceed {THRESHOLD:g} ({100 * frac.low:.1f}% to "
        f"{100 * frac.high:.1f}% over seeds): typical, not a bound; -ln(product) is "
        f"Gamma({FACTORS}, 1), whose left tail reaches {-math.log10(THRESHOLD):g} ln 10",
        factors=FACTORS,
        threshold=THRESHOLD,
    )


def weight_bound(m: Measured) -> Claim:
    gradients = m.tables["gradients"]
    n_below = int((gradients["ratio"] <= gradients["bound"]).sum())
    return WEIGHT_BOUND.judge(
        n_below == len(gradients),
        {
            "ratio / bound (max)": float((gradients["ratio"] / gradients["bound"]).max()),
            "configurations": len(gradients),
        },
        f"measured ratio <= bound in {n_below} of {len(gradients)} (seed, n) pairs, "
        "Xavier-uniform nets of width 64 at init",
    )


def quarter_per_layer(m: Measured) -> Claim:
    gradients = m.tables["gradients"]
    fs = mean_spread([per_layer_factor(g) for _, g in gradients.groupby("seed")])
    deepest = max(m.params["depths"])
    low, high = QUARTER_RANGE
    return QUARTER_PER_LAYER.judge(
        low <= fs.low and fs.high <= high,
        {
            "per-layer factor": fs,
            "ratio at largest n": mean_spread(gradients[gradients.n == deepest].ratio),
            "(1/4)^n at largest n": 0.25**deepest,
        },
        f"fitted factor {fs.mean:.3f} per layer ({fs.low:.3f} to {fs.high:.3f} over seeds): "
        "sigmoid' averages below 1/4 over the units",
        low=low,
        high=high,
    )


CHECKS = (derivative_bounds, typically_below, never_above, weight_bound, quarter_per_layer)


def claims(m: Measured) -> list[Claim]:
    """The claims of `CHECKS`, judged on the measurements."""
    return judge_all(CHECKS, m)


def figures(m: Measured) -> Figures:
    """The derivatives, and the products against the measured gradients."""
    drawn = {
        "derivatives": _derivatives_figure(m.data["z"], m.data["derivatives"]),
        "products": _products_figure(m.data["band"], m.tables["gradients"], MAX_N),
    }
    captions = {
        "derivatives": "Sigmoid, tanh and ReLU derivatives by autograd. sigmoid' never exceeds "
        "1/4 and tanh' never exceeds 1; both vanish for |z| beyond a few units (saturation).",
        "products": "log10 of a product of n U(0, 1) numbers (median and 5–95% band over draws) "
        f"against the {THRESHOLD:g} line, the bound (1/4)^n, and the measured ratio of the "
        "gradient at the first hidden layer to the one n sigmoid layers later (nets at init).",
    }
    return drawn, captions


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
    measure=measure,
    claims=claims,
    figures=figures,
)
