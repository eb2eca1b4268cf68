"""The doctor on problems with a known answer: a deep sigmoid MLP, and a healthy model."""

from __future__ import annotations

import pytest
import torch

import gradsight as gs
from gradsight.doctor import doctor

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


@pytest.fixture(scope="module")
def sigmoid_prescription(task):
    return doctor(deep_sigmoid, task, optimizer="sgd", lr=0.1, steps=200, seeds=2)


def test_deep_sigmoid_gets_a_proven_remedy(sigmoid_prescription) -> None:
    p = sigmoid_prescription
    assert "vanishing_gradients" in [f.kind for f in p.findings]
    assert p.best in RESCUES
    row = p.trials.set_index("remedy").loc[p.best]
    assert row["improvement"] > 0.3 and row["ci_low"] > 0
    assert row["test_accuracy"] > p.baseline["test_accuracy"] + 0.3
    assert "relu_activation+he_init" in set(p.trials["remedy"])  # the top two combined
    assert p.trials["improvement"].is_monotonic_decreasing


def test_summary_says_what_to_change(sigmoid_prescription) -> None:
    text = sigmoid_prescription.summary()
    assert "Best remedy" in text and sigmoid_prescription.best in text
    assert "gs.models.mlp(" in text or "torch.optim" in text
    assert "Not applicable: residual_connections" in text


def test_healthy_model_gets_no_trials(task) -> None:
    p = doctor(healthy, task, optimizer="adam", lr=1e-3, steps=150, seeds=2)
    assert p.trials.empty and p.best is None
    assert "No pathology found" in p.summary()


def test_given_model_is_copied_and_named_remedies_run(task) -> None:
    model = deep_sigmoid(0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    p = doctor(model, task, lr=0.1, steps=20, seeds=1, remedies=["momentum", "lstm_cell"])
    assert list(p.trials["remedy"]) == ["momentum"]
    assert "lstm_cell" in p.skipped
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_threads_restored_and_bad_arguments(task) -> None:
    threads = torch.get_num_threads()
    doctor(healthy, task, optimizer="adam", steps=5, seeds=1, remedies=[])
    assert torch.get_num_threads() == threads
    with pytest.raises(ValueError, match="seeds must be >= 1, got 0"):
        doctor(healthy, task, seeds=0)
    with pytest.raises(TypeError, match="returned int"):
        doctor(lambda seed: 3, task, steps=5, seeds=1)
