"""A remedy as a diff of a run config, or no config form (its code change stands)."""

from __future__ import annotations

import dataclasses
import sys

import pytest
from torch import nn

from gradsight.config import prepare
from gradsight.doctor.config_diff import config_changes, diff_lines, toml_value
from gradsight.remedies import apply_remedies

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SIGMOID = {
    "task": {"name": "digits"},
    "model": {"kind": "mlp", "depth": 3, "width": 16, "activation": "sigmoid",
              "init": "xavier_uniform"},
    "train": {"optimizer": "sgd", "lr": 0.1},
}  # fmt: skip
RAW = {"task": {"name": "digits", "standardize": False}, "model": {"depth": 3, "width": 16}}
RNN = {
    "task": {"name": "adding", "length": 10, "n_train": 64, "n_test": 32},
    "model": {"kind": "rnn", "hidden_size": 8},
    "train": {"optimizer": "adam", "lr": 0.01},
}
CNN = {"task": {"name": "digits"}, "model": {"kind": "cnn", "channels": [4], "activation": "tanh"}}


def diff(config: dict, names: list[str]) -> list[str] | None:
    prepared = prepare(config)
    settings = {k: v for k, v in prepared.fit_args.items() if k in ("optimizer", "lr")}
    treatment = apply_remedies(names, prepared.model, settings, prepared.task)
    changes = config_changes(config, treatment, settings, prepared.task, prepared.model)
    return None if changes is None else diff_lines(changes)


# (id, config, remedies, diff lines)
CASES = [
    ("relu", SIGMOID, ["relu_activation"],
     ["  [model]", '- activation = "sigmoid"', '+ activation = "relu"']),
    ("relu+he", SIGMOID, ["relu_activation", "he_init"],
     ["  [model]", '- activation = "sigmoid"', '+ activation = "relu"',
      '- init = "xavier_uniform"', '+ init = "he_normal"']),
    ("batch-norm", SIGMOID, ["batch_norm"], ["  [model]", '+ norm = "batch"']),
    ("momentum", SIGMOID, ["momentum"], ["  [train]", "+ momentum = 0.9"]),
    ("lower-lr", SIGMOID, ["lower_learning_rate"], ["  [train]", "- lr = 0.1", "+ lr = 0.01"]),
    ("adam", SIGMOID, ["adaptive_optimizer"],
     ["  [train]", '- optimizer = "sgd"', '+ optimizer = "adam"', "- lr = 0.1", "+ lr = 0.001"]),
    ("clip+decay", SIGMOID, ["gradient_clipping", "weight_decay"],
     ["  [train]", "+ clip_norm = 1.0", "+ weight_decay = 0.0005"]),
    ("standardize", RAW, ["normalize_inputs", "leaky_relu_activation"],
     ["  [task]", "- standardize = false", "+ standardize = true",
      "  [model]", '+ activation = "leaky_relu"']),
    ("lstm", RNN, ["lstm_cell"], ["  [model]", '+ cell = "lstm"']),
    ("cnn-elu", CNN, ["elu_activation"], ["  [model]", '- activation = "tanh"',
                                          '+ activation = "elu"']),
    ("warmup", SIGMOID, ["lr_warmup"],
     ["  [train]", "+ schedule_options = { warmup_fraction = 0.1 }"]),
]  # fmt: skip


@pytest.mark.parametrize(("config", "names", "lines"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_remedy_as_config_diff(config, names, lines) -> None:
    assert diff(config, names) == lines


def test_a_model_the_config_cannot_build_has_no_config_form() -> None:
    prepared = prepare(SIGMOID)
    settings = {"optimizer": "sgd", "lr": 0.1}
    treatment = apply_remedies(["relu_activation"], prepared.model, settings, prepared.task)
    odd = dataclasses.replace(treatment, model=nn.Sequential(treatment.model, nn.Dropout()))
    assert config_changes(SIGMOID, odd, settings, prepared.task, prepared.model) is None
    momentum = apply_remedies(["momentum"], prepared.model, settings, prepared.task)
    unknown = dataclasses.replace(momentum, settings={**momentum.settings, "swa": True})
    assert config_changes(SIGMOID, unknown, settings, prepared.task, prepared.model) is None


# (value, TOML text)
VALUES = [(True, "true"), ("relu", '"relu"'), (0.01, "0.01"), (1.0, "1.0"), (1e-5, "1e-05"),
          (3, "3"), ('say "hi"', '"say \\"hi\\""'), ([4, 8], "[4, 8]"),
          ({"warmup_fraction": 0.1, "a b": True},
           '{ warmup_fraction = 0.1, "a b" = true }')]  # fmt: skip


@pytest.mark.parametrize(("value", "text"), VALUES, ids=[v[1] for v in VALUES])
def test_toml_value(value, text) -> None:
    assert toml_value(value) == text
    assert tomllib.loads(f"x = {text}")["x"] == value  # it reads back as the same value
