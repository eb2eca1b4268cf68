from pathlib import Path

import pytest
import torch

import gradsight as gs
from gradsight.config import ConfigError, build_model, load_config, prepare, set_value

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_config_is_valid(path):
    prepared = prepare(load_config(path))
    assert prepared.name == path.stem
    assert prepared.fit_args["steps"] >= 1
    x = prepared.task.x_train[:4]
    assert prepared.model(x).shape[0] == 4


def test_there_are_two_or_three_examples():
    assert 2 <= len(EXAMPLES) <= 3


SETS = [
    ("train.lr=0.5", ["train", "lr"], 0.5),
    ("train.steps=10", ["train", "steps"], 10),
    ('model.activation="tanh"', ["model", "activation"], "tanh"),
    ("model.activation=tanh", ["model", "activation"], "tanh"),  # bare words are strings
    ("model.residual=true", ["model", "residual"], True),
    ("model.channels=[8, 16]", ["model", "channels"], [8, 16]),
]


@pytest.mark.parametrize(("text", "path", "value"), SETS, ids=[s[0] for s in SETS])
def test_set_value_reads_toml_values(text, path, value):
    config = {"train": {"lr": 0.1}}
    set_value(config, text)
    assert config[path[0]][path[1]] == value


def test_set_value_needs_key_equals_value():
    with pytest.raises(ConfigError, match="expected key=value"):
        set_value({}, "train.lr")


TASK_MODELS = [
    ("digits", "mlp", {"depth": 2}, (5, 10)),
    ("digits", "cnn", {"in_shape": None}, (5, 10)),
    ("mnist1d", "resnet", {"depth": 1, "channels": 4}, (5, 10)),
    ("adding", "rnn", {"hidden_size": 8}, (5, 1)),
    ("copy", "rnn", {"hidden_size": 8, "cell": "gru"}, None),
]


@pytest.mark.parametrize(
    ("task_name", "kind", "options", "shape"),
    TASK_MODELS,
    ids=[f"{t}-{k}" for t, k, *_ in TASK_MODELS],
)
def test_build_model_fits_the_task(task_name, kind, options, shape):
    small = {
        "adding": {"n_train": 20, "n_test": 5, "length": 6},
        "copy": {"n_train": 20, "n_test": 5, "length": 3, "memory": 2},
        "mnist1d": {"num_samples": 50},
    }
    task = gs.data.load(task_name, **small.get(task_name, {}))
    options = {k: v for k, v in options.items() if v is not None}
    model = build_model(kind, task, **options)
    out = model(task.x_train[:5])
    if shape is None:  # sequence targets: one prediction per step
        shape = (5, task.y_train.shape[1], task.output_size)
    assert tuple(out.shape) == shape
    loss = task.loss_fn(out, task.y_train[:5])
    assert torch.isfinite(loss)


def test_rnn_needs_sequence_inputs():
    with pytest.raises(ValueError, match="rnn needs \\(time, features\\) inputs"):
        build_model("rnn", gs.data.load("spirals", n_train=10, n_test=5), hidden_size=4)
