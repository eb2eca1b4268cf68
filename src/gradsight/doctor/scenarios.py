"""Small training runs with a known diagnosis: what the thresholds are calibrated on, and the
doctor's ready-made patients (`doctor.patients`).

Each `Scenario` builds a task and a model, trains briefly with `gs.fit` under `gs.watch`,
and names the finding kinds it must produce (none of severity warning or critical for a
healthy one). They live beside the doctor, not in `diagnosis`, because they train.

>>> run = SCENARIOS["sigmoid_deep_sgd"].run()
>>> [f.kind for f in run.findings]          # doctest: +SKIP
['vanishing_gradients', 'loss_plateau', 'non_zero_centered']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from gradsight import data, models
from gradsight.data.task import Task
from gradsight.diagnosis.finding import Finding
from gradsight.diagnosis.rules import diagnose
from gradsight.train.fit import FitResult, fit

# Watching every 5 steps gives the rules enough points in runs of a few hundred steps.
WATCH = {"every": 1, "updates_every": 5, "activations_every": 5}


@dataclass(frozen=True)
class ScenarioRun:
    """A scenario's training result and the findings on it."""

    scenario: Scenario
    result: FitResult
    findings: list[Finding]

    @property
    def kinds(self) -> set[str]:
        """Kinds of the findings of severity warning or critical."""
        return {f.kind for f in self.findings if f.severity != "info"}


@dataclass(frozen=True)
class Scenario:
    """A run with a known answer.

    Attributes:
        name: Registry name.
        description: What is wrong (or right) with it, and the paper or seed that says so.
        expected: Finding kinds the diagnosis must report; empty for a healthy run, which
            must get no warning or critical finding.
        task: Builds the task.
        model: Builds the model for the task.
        fit: Keyword arguments of `gs.fit` (optimizer, lr, steps, ...).
    """

    name: str
    description: str
    expected: tuple[str, ...]
    task: Callable[[], Task]
    model: Callable[[Task], nn.Module]
    fit: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """Whether no pathology is expected."""
        return not self.expected

    def run(self, seed: int = 0, **overrides: Any) -> ScenarioRun:
        """Train and diagnose; `overrides` replace `fit` arguments (e.g. steps)."""
        task = self.task()
        model = self.model(task)
        options = {"seed": seed, "watch": WATCH, **self.fit, **overrides}
        result = fit(model, task, **options)
        return ScenarioRun(self, result, diagnose(result.history, task=task))


def _digits(standardize: bool = True, scale: float = 1.0) -> Callable[[], Task]:
    def make() -> Task:
        task = data.load("digits", seed=0, standardize=standardize)
        if scale == 1.0:
            return task
        return dataclasses.replace(task, x_train=task.x_train * scale, x_test=task.x_test * scale)

    return make


def _mlp(depth: int, width: int, activation: str, init: str, **options: Any):
    def make(task: Task) -> nn.Module:
        return models.mlp(
            task.input_shape[0],
            task.output_size,
            depth=depth,
            width=width,
            activation=activation,
            init=init,
            seed=0,
            **options,
        )

    return make


def _adding() -> Task:
    return data.load("adding", seed=0, length=30, n_train=1000, n_test=200)


def _rnn(cell: str):
    def make(task: Task) -> nn.Module:
        return models.rnn(2, 32, 1, cell=cell, seed=0)

    return make


def _cnn(task: Task) -> nn.Module:
    return models.cnn((1, 8, 8), 10, channels=(8, 16), activation="relu", init="he_normal", seed=0)


SGD = {"optimizer": "sgd", "batch_size": 64, "steps": 300}
ADAM = {"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "steps": 300}

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "sigmoid_deep_sgd",
            "12-layer sigmoid MLP, Glorot init, plain SGD on digits: sigmoid' <= 1/4 per "
            "layer starves the first layers (Glorot & Bengio 2010).",
            ("vanishing_gradients",),
            _digits(),
            _mlp(12, 32, "sigmoid", "xavier_uniform"),
            {**SGD, "lr": 0.1},
        ),
        Scenario(
            "relu_normal_init",
            "6-layer ReLU MLP with N(0, 1) weights: each layer multiplies the signal by "
            "~sqrt(fan_in / 2) (He et al. 2015).",
            ("exploding_gradients",),
            _digits(),
            _mlp(6, 64, "relu", "normal", init_options={"std": 1.0}),
            {**SGD, "lr": 1e-6},
        ),
        Scenario(
            "relu_negative_bias",
            "ReLU MLP with every bias at -3: units are off for every input and never recover.",
            ("dead_units",),
            _digits(),
            _mlp(4, 64, "relu", "he_normal", bias_init=-3.0),
            ADAM,
        ),
        Scenario(
            "tanh_inputs_x50",
            "tanh MLP fed inputs scaled by 50: the first layer sits in tanh's flat tails.",
            ("saturated_activations",),
            _digits(scale=50.0),
            _mlp(3, 64, "tanh", "xavier_uniform"),
            {**SGD, "lr": 0.01},
        ),
        Scenario(
            "sgd_lr_tiny",
            "SGD with lr 1e-6: updates are a millionth of the weights, the loss does not move.",
            ("learning_rate_too_low",),
            _digits(),
            _mlp(3, 64, "relu", "he_normal"),
            {**SGD, "lr": 1e-6},
        ),
        Scenario(
            "sgd_lr_huge",
            "SGD with lr 10 on an MLP: every step overshoots and the loss blows up.",
            ("learning_rate_too_high",),
            _digits(),
            _mlp(3, 64, "relu", "he_normal"),
            {**SGD, "lr": 10.0},
        ),
        Scenario(
            "sgd_lr_nan",
            "SGD with lr 1e4: the weights overflow to Inf/NaN within a few steps.",
            ("non_finite", "learning_rate_too_high"),
            _digits(),
            _mlp(3, 64, "relu", "he_normal"),
            {**SGD, "lr": 1e4},
        ),
        Scenario(
            "vanilla_rnn_adding",
            "tanh RNN on the adding problem (T = 30): the gradient fades over time steps "
            "(Bengio et al. 1994; Hochreiter & Schmidhuber 1997).",
            ("vanishing_gradients",),
            _adding,
            _rnn("rnn"),
            {**ADAM, "lr": 1e-3, "steps": 200},
        ),
        Scenario(
            "sigmoid_raw_inputs",
            "Sigmoid MLP on raw pixel intensities (0..16): inputs and sigmoid outputs are "
            "all positive, so descent zig-zags (LeCun et al. 1998).",
            ("non_zero_centered",),
            _digits(standardize=False),
            _mlp(3, 64, "sigmoid", "xavier_uniform"),
            {**SGD, "lr": 0.1},
        ),
        Scenario(
            "tiny_init_plateau",
            "tanh MLP initialised with weights ~1e-6: every gradient is ~0 and the loss sits "
            "on a plateau at ln(10).",
            ("loss_plateau",),
            _digits(),
            _mlp(4, 64, "tanh", "normal", init_options={"std": 1e-6}),
            {**SGD, "lr": 0.1},
        ),
        Scenario(
            "relu_he_adam",
            "Healthy: 4-layer ReLU MLP, He init, Adam on digits.",
            (),
            _digits(),
            _mlp(4, 64, "relu", "he_normal"),
            ADAM,
        ),
        Scenario(
            "small_cnn_adam",
            "Healthy: a two-stage ReLU CNN with He init, Adam on digits.",
            (),
            _digits(),
            _cnn,
            ADAM,
        ),
        Scenario(
            "lstm_adding",
            "Healthy: an LSTM on the adding problem (T = 30) learns it.",
            (),
            _adding,
            _rnn("lstm"),
            {**ADAM, "lr": 1e-2, "clip_norm": 1.0, "steps": 300},
        ),
        Scenario(
            "tanh_glorot_adam",
            "Healthy: 3-layer tanh MLP, Glorot init, Adam on digits.",
            (),
            _digits(),
            _mlp(3, 64, "tanh", "xavier_uniform"),
            ADAM,
        ),
    )
}
