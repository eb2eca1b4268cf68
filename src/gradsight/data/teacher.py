"""Regression on the outputs of a random deep teacher network (student-teacher setting)."""

from __future__ import annotations

import itertools
import math

import torch

from gradsight.checks import check_elements, check_float, check_int
from gradsight.data.task import Task
from gradsight.errors import InputError

_ACTIVATIONS = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "linear": lambda h: h,
}


def teacher(
    seed: int = 0,
    in_features: int = 20,
    out_features: int = 1,
    depth: int = 4,
    width: int = 64,
    n_train: int = 2000,
    n_test: int = 1000,
    noise: float = 0.0,
    activation: str = "tanh",
) -> Task:
    """Targets from a random teacher MLP, so a student of the same shape can fit them exactly.

    The teacher has `depth` linear layers in -> width -> ... -> width -> out without biases,
    the activation between them and none after the last. Its weights are
    W_l ~ N(0, 1/fan_in) (LeCun et al. 1998, "Efficient BackProp"), drawn from the seed.
    Inputs x ~ N(0, I); targets y = teacher(x) + noise·ε, ε ~ N(0, I).
    The description gives Var(y) on the train split: the MSE of predicting the train mean.
    The noise floor of the test MSE is noise².

    Args:
        seed: Seed of the teacher's weights, the inputs and the noise.
        in_features: Input size.
        out_features: Output size.
        depth: Number of linear layers, >= 1 (1 is a linear teacher).
        width: Hidden width.
        n_train: Number of training examples.
        n_test: Number of test examples.
        noise: Std of the Gaussian noise added to the targets, >= 0.
        activation: One of "tanh", "relu", "sigmoid", "linear".

    Returns:
        An mse/mse Task with inputs (N, in_features) and float32 targets (N, out_features).
    """
    in_features = check_int("in_features", in_features, 1)
    out_features = check_int("out_features", out_features, 1)
    depth, width = check_int("depth", depth, 1), check_int("width", width, 1)
    n_train, n_test = check_int("n_train", n_train, 1), check_int("n_test", n_test, 1)
    check_elements("teacher (n_train + n_test) x in_features", n_train + n_test, in_features)
    check_elements("teacher (n_train + n_test) x width", n_train + n_test, width)
    check_elements("teacher weights depth x width x width", depth, width, width)
    noise = check_float("noise", noise)
    if not isinstance(activation, str) or activation not in _ACTIVATIONS:
        raise InputError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    act = _ACTIVATIONS[activation]
    g = torch.Generator().manual_seed(seed)
    sizes = [in_features] + [width] * (depth - 1) + [out_features]
    weights = [
        torch.randn(fan_in, fan_out, generator=g) / math.sqrt(fan_in)
        for fan_in, fan_out in itertools.pairwise(sizes)
    ]
    x = torch.randn(n_train + n_test, in_features, generator=g)  # (N, in)
    h = x
    for i, w in enumerate(weights):
        h = h @ w
        if i < depth - 1:
            h = act(h)
    y = h + noise * torch.randn(h.shape, generator=g)  # (N, out)
    x_train, x_test = x.split([n_train, n_test])
    y_train, y_test = y.split([n_train, n_test])
    var = y_train.var(dim=0, correction=0).mean().item()
    return Task(
        name="teacher",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        loss="mse",
        metric="mse",
        input_shape=(in_features,),
        output_size=out_features,
        description=(
            f"Random {activation} teacher MLP, depth {depth}, width {width}: predicting the "
            f"train mean scores MSE ≈ Var(y) = {var:.4g}; the noise floor is {noise**2:.4g}."
        ),
    )
