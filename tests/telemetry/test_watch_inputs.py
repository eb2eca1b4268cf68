"""A watch that could record nothing says so in one line, before training starts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import gradsight as gs


def frozen(model: nn.Module) -> nn.Module:
    for param in model.parameters():
        param.requires_grad_(False)
    return model


CASES = [
    pytest.param(lambda: (frozen(nn.Linear(3, 2)), None), "no trainable parameters", id="frozen"),
    pytest.param(lambda: (nn.ReLU(), None), "no trainable parameters", id="no-parameters"),
    pytest.param(
        lambda: (nn.Linear(3, 2), torch.optim.SGD(nn.Linear(3, 2).parameters(), lr=0.1)),
        "holds none of Linear's trainable parameters",
        id="another-models-optimizer",
    ),
]


@pytest.mark.parametrize(("make", "message"), CASES)
def test_a_watch_that_could_record_nothing_is_refused(make, message):
    model, optimizer = make()
    with pytest.raises(ValueError, match=message):
        gs.watch(model, optimizer)


def test_an_optimizer_over_part_of_the_model_is_fine():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    frozen(model[0])
    optimizer = torch.optim.SGD(model[2].parameters(), lr=0.1)
    with gs.watch(model, optimizer) as watch:
        model(torch.randn(5, 3)).sum().backward()
        optimizer.step()
    assert list(watch.history.table("grad/norm").columns) == ["2"]
