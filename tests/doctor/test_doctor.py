"""The doctor on problems with a known answer (a deep sigmoid MLP, a healthy model, a saddle),
on a user's loader, and on every executor."""

from __future__ import annotations

import functools
import re

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import gradsight as gs
from gradsight.doctor import as_task, doctor
from gradsight.doctor.choose import follow_up_base
from gradsight.doctor.patients import patient
from gradsight.doctor.table import null_score
from gradsight.doctor.trial import RunResult
from gradsight.executor import Executor

# Remedies known to rescue a deep sigmoid net trained by SGD (Glorot & Bengio 2010; He et
# al. 2015; Ioffe & Szegedy 2015).
RESCUES = {"relu_activation", "batch_norm", "relu_activation+he_init", "adaptive_optimizer"}


@pytest.fixture(scope="module")
def task() -> gs.Task:
    return gs.data.load("digits", seed=0)


def deep_sigmoid(seed: int) -> torch.nn.Module:
    return gs.models.mlp(
        64, 10, depth=10, width=32, activation="sigmoid", init="xavier_uniform", seed=seed
    )


def healthy(seed: int) -> torch.nn.Module:
    return gs.models.mlp(64, 10, depth=3, width=64, activation="relu", init="he_normal", seed=seed)


# The deep sigmoid net of the diagnosis scenarios (12 layers, SGD, 3 seeds).
SIGMOID = pytest.mark.parametrize("name", ["sigmoid_deep_sgd"])


@SIGMOID
def test_deep_sigmoid_gets_a_proven_remedy(scenario_prescriptions, name) -> None:
    p = scenario_prescriptions[name]
    assert "vanishing_gradients" in [f.kind for f in p.findings]
    assert p.best in RESCUES
    row = p.trials.set_index("remedy").loc[p.best]
    assert row["improvement"] > 0.3 and row["ci_low"] > 0
    assert row["test_accuracy"] > p.baseline["test_accuracy"] + 0.3
    assert "relu_activation+he_init" in set(p.trials["remedy"])  # the top two combined
    assert p.trials["improvement"].is_monotonic_decreasing


@SIGMOID
def test_summary_says_what_to_change(scenario_prescriptions, name) -> None:
    p = scenario_prescriptions[name]
    text = p.summary()
    assert "Best remedy" in text and p.best in text
    assert "gs.models.mlp(" in text or "torch.optim" in text
    assert "Not applicable: residual_connections" in text


def test_healthy_model_gets_no_trials(task) -> None:
    p = doctor(healthy, task, optimizer="adam", lr=1e-3, steps=150, seeds=2)
    assert p.trials.empty and p.best is None and p.healthy and p.curvature is None
    assert "No pathology found" in p.summary()


def test_given_model_is_copied_and_named_remedies_run(task) -> None:
    model = deep_sigmoid(0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    p = doctor(model, task, lr=0.1, steps=20, seeds=1, remedies=["momentum", "lstm_cell"])
    assert list(p.trials["remedy"]) == ["momentum"]
    assert "lstm_cell" in p.skipped
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_saddle_is_confirmed_by_negative_curvature() -> None:
    # A tanh net started at weights ~1e-6 sits at the saddle around the origin: SGD leaves
    # the loss at ln 10, and the Hessian there has a clearly negative eigenvalue.
    p = doctor(**{**patient("tiny_init_plateau"), "steps": 100}, seeds=1, remedies=[])
    c = p.curvature
    assert c is not None and c.saddle and c.seed == 0 and c.step == 100
    assert c.lambda_min < -0.1 * c.lambda_max < 0
    plateau = next(f for f in p.findings if f.kind == "loss_plateau")
    assert plateau.evidence["lambda_min"] == c.lambda_min
    assert "saddle, not a minimum" in p.summary()


def test_a_diverged_baseline_scores_as_learning_nothing(task) -> None:
    assert null_score(task) == pytest.approx(0.1, abs=0.01)  # 10 balanced classes
    p = doctor(**{**patient("sgd_lr_huge"), "steps": 50}, seeds=2, remedies=["lower_learning_rate"])
    assert p.baseline["diverged"] == 2 and p.baseline["test_accuracy"] == null_score(task)
    assert p.best == "lower_learning_rate" and p.trials["ci_low"][0] > 0.5
    assert "diverged in 2 of 2 seeds" in p.summary()


def _result(*kinds: str) -> RunResult:
    findings = [
        gs.Finding(kind, "warning", "", remedies=(gs.diagnosis.Remedy("momentum"),))
        for kind in kinds
    ]
    return RunResult({"diverged": False}, 1.0, findings)


def test_follow_up_treats_what_the_best_cure_left() -> None:
    baseline = [_result("exploding_gradients", "dead_units")]
    trials = {
        ("he_init",): [_result("learning_rate_too_low")],  # cures two, leaves one
        ("gradient_clipping",): [_result("dead_units")],  # cures one
        ("batch_norm",): [_result()],  # cures both, nothing left to treat
    }
    gains = {("he_init",): -0.2, ("gradient_clipping",): 0.0, ("batch_norm",): -0.3}
    assert follow_up_base(baseline, trials, gains) == ("he_init",)
    cured_nothing = {("momentum",): [_result("exploding_gradients", "dead_units")]}
    assert follow_up_base(baseline, cured_nothing, {}) is None


def _digits_loader(task: gs.Task, batch_size: int = 100) -> DataLoader:
    return DataLoader(TensorDataset(task.x_train, task.y_train), batch_size=batch_size)


def test_loader_and_tensors_become_a_task_with_a_holdout(task) -> None:
    made = as_task(_digits_loader(task), holdout=0.25)
    n = len(task.x_train)
    assert (len(made.x_test), len(made.x_train)) == (round(0.25 * n), n - round(0.25 * n))
    assert (made.loss, made.metric, made.input_shape, made.output_size) == (
        "cross_entropy",
        "accuracy",
        (64,),
        10,
    )
    x, y = torch.randn(50, 3), torch.randn(50, 2)
    regression = as_task((x, y))
    assert (regression.loss, regression.metric, regression.output_size) == ("mse", "mse", 2)
    assert torch.equal(as_task((x, y)).x_test, regression.x_test)  # a fixed holdout
    loader = _digits_loader(task)
    p = doctor(healthy, loader, loss="cross_entropy", optimizer="adam", steps=60, seeds=1)
    assert p.metric == "accuracy" and p.baseline["test_accuracy"] > 0.5


X, Y = torch.randn(20, 4), torch.randint(0, 3, (20,))
# (id, data, more arguments of the doctor, error, words of the message)
BAD = [
    ("seeds-0", (X, Y), {"seeds": 0}, ValueError, "seeds must be >= 1, got 0"),
    ("steps-0", (X, Y), {"steps": 0}, ValueError, "steps must be >= 1, got 0"),
    ("not-data", [1, 2, 3], {}, TypeError, "must be a gs.data.Task, a DataLoader"),
    ("lengths", (X, Y[:5]), {}, ValueError, "differ in length: 20 and 5"),
    ("loss-name", (X, Y), {"loss": "hinge"}, ValueError, "unknown loss 'hinge'"),
    ("loss-fn", (X, Y), {"loss": F.l1_loss}, TypeError, "not a callable"),
    ("float-ce", (X, X), {"loss": "cross_entropy"}, ValueError, "integer class targets"),
    ("holdout", (X, Y), {"holdout": 1.0}, ValueError, "holdout must be"),
    ("dicts", DataLoader([{"x": 1}]), {}, TypeError, "not an (inputs, targets) pair"),
    ("executor", (X, Y), {"executor": 2}, TypeError, "executor must be"),
    ("remedies", (X, Y), {"remedies": "momentum"}, ValueError, "remedies must be"),
]


@pytest.mark.parametrize(
    ("data", "kwargs", "error", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_input_is_refused_with_the_bad_value(data, kwargs, error, words) -> None:
    with pytest.raises(error, match=re.escape(words)):
        doctor(healthy, data, **{"steps": 5, **kwargs})


def test_factory_errors_and_threads(task) -> None:
    threads = torch.get_num_threads()
    doctor(healthy, task, optimizer="adam", steps=5, seeds=1, remedies=[])
    assert torch.get_num_threads() == threads
    with pytest.raises(TypeError, match="returned int"):
        doctor(lambda seed: 3, task, steps=5, seeds=1)
    with pytest.raises(TypeError, match="must be picklable"):
        doctor(lambda seed: healthy(seed), task, steps=5, executor=Executor(workers=2))


# A small case for the executors: the baseline, two remedies and their follow-up-free ranking.
SMALL = {**patient("tiny_init_plateau"), "steps": 40}
SMALL_RUN = functools.partial(doctor, **SMALL, seeds=2, remedies=["he_init", "momentum"])


@pytest.fixture(scope="module")
def serial_prescription():
    return SMALL_RUN()


def _same(a, b) -> None:
    pd.testing.assert_frame_equal(a.trials, b.trials)
    pd.testing.assert_series_equal(a.baseline, b.baseline)
    assert (a.best, a.curvature) == (b.best, b.curvature)
    assert [f.summary for f in a.findings] == [f.summary for f in b.findings]


@pytest.mark.slow
def test_worker_processes_give_the_serial_results(serial_prescription) -> None:
    _same(SMALL_RUN(executor=Executor(workers=2)), serial_prescription)


@pytest.mark.slow
def test_ray_gives_the_serial_results(local_ray, serial_prescription) -> None:
    _same(SMALL_RUN(executor="ray"), serial_prescription)
