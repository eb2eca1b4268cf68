import pytest
import torch

from gradsight.train import OPTIMIZERS, build_optimizer, register_optimizer

CASES = [
    # name, momentum given, class, expected settings
    ("sgd", 0.0, torch.optim.SGD, {"momentum": 0.0, "nesterov": False}),
    ("sgd", 0.5, torch.optim.SGD, {"momentum": 0.5}),
    ("momentum", 0.0, torch.optim.SGD, {"momentum": 0.9, "nesterov": False}),
    ("nag", 0.0, torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
    ("nag", 0.95, torch.optim.SGD, {"momentum": 0.95, "nesterov": True}),
    ("adagrad", 0.0, torch.optim.Adagrad, {}),
    ("rmsprop", 0.0, torch.optim.RMSprop, {"momentum": 0.0}),
    ("adam", 0.0, torch.optim.Adam, {"betas": (0.9, 0.999)}),
    ("adamw", 0.0, torch.optim.AdamW, {}),
]


@pytest.mark.parametrize(
    ("name", "momentum", "cls", "settings"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
def test_names_build_the_torch_rules(name, momentum, cls, settings):
    optimizer = build_optimizer(name, torch.nn.Linear(2, 2).parameters(), 0.1, momentum=momentum)
    assert type(optimizer) is cls
    assert optimizer.defaults["lr"] == 0.1
    for key, value in settings.items():
        assert optimizer.defaults[key] == value


def test_default_learning_rate_comes_from_the_rule():
    optimizer = build_optimizer("adam", torch.nn.Linear(2, 2).parameters())
    assert optimizer.defaults["lr"] == OPTIMIZERS["adam"].default_lr


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "adamax"}, "unknown optimizer 'adamax'; choose one of: sgd, momentum"),
        ({"name": "sgd", "lr": -1.0}, "lr must be > 0, got -1.0"),
        ({"name": "sgd", "momentum": 1.5}, r"momentum must be in \[0, 1\), got 1.5"),
        ({"name": "adam", "momentum": 0.9}, "'adam' takes no momentum"),
        ({"name": "adam", "nesterov": True}, "nesterov applies to 'sgd' and 'nag'"),
        ({"name": "sgd", "nesterov": True}, "nesterov needs momentum > 0"),
        ({"name": "sgd", "weight_decay": -1.0}, "weight_decay must be >= 0"),
        ({"name": "sgd", "colour": 1}, "optimizer 'sgd'.*colour"),
    ],
    ids=[
        "unknown",
        "lr",
        "momentum-range",
        "adam-momentum",
        "adam-nesterov",
        "nesterov-no-momentum",
        "negative-decay",
        "unknown-option",
    ],
)
def test_bad_arguments_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_optimizer(params=torch.nn.Linear(2, 2).parameters(), **kwargs)


def test_registered_optimizer_is_available_by_name():
    register_optimizer("test_sgd", torch.optim.SGD, 0.5)
    try:
        optimizer = build_optimizer("test_sgd", torch.nn.Linear(2, 2).parameters())
        assert optimizer.defaults["lr"] == 0.5
    finally:
        del OPTIMIZERS["test_sgd"]
