"""batch_norm on models that are not nn.Sequential: traced with torch.fx, or not applicable."""

from __future__ import annotations

import pytest
import torch
from torch import fx, nn

import gradsight as gs
from gradsight.remedies import NotApplicable, batch_norm

SGD = {"optimizer": "sgd", "lr": 0.1}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def task() -> gs.Task:
    return gs.data.load("digits", seed=0)


class Plain(nn.Module):
    """Three Linear layers called in forward, one activation module reused."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(64, 32), nn.Linear(32, 32), nn.Linear(32, 10)
        self.act = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.fc1(x))
        x = self.act(self.fc2(x))
        return self.fc3(x)


class Convs(nn.Module):
    """Conv2d layers on the 8x8 digits, a Linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4 * 64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(-1, 1, 8, 8)  # (N, 1, 8, 8)
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.head(x.flatten(1))


class Shared(nn.Module):
    """One hidden Linear called twice: a norm per call."""

    def __init__(self) -> None:
        super().__init__()
        self.inp, self.fc, self.out = nn.Linear(64, 16), nn.Linear(16, 16), nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.inp(x))
        x = torch.tanh(self.fc(torch.tanh(self.fc(x))))
        return self.out(x)


class Branching(nn.Module):
    """Control flow on the data: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(64, 16), nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        if h.mean() > 0:
            h = -h
        return self.fc2(torch.relu(h))


class Normalised(nn.Module):
    """Its only hidden layer is already followed by a norm."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.bn, self.fc2 = nn.Linear(64, 16), nn.BatchNorm1d(16), nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.bn(self.fc1(x))))


class PerStep(nn.Module):
    """A Linear applied to (N, T, F) sequences: BatchNorm1d would normalise T, so no norm."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.head = nn.Linear(8, 16), nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x.view(-1, 8, 8)))  # (N, T=8, 16)
        return self.head(h.mean(1))


def norms(model: nn.Module) -> list[type]:
    return [type(m) for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]


# (id, model class, the norms inserted)
TRACED = [
    ("linear", Plain, [nn.BatchNorm1d] * 2),
    ("conv", Convs, [nn.BatchNorm2d] * 2),
    ("shared-layer", Shared, [nn.BatchNorm1d] * 3),
]


@pytest.mark.parametrize(("build", "inserted"), [c[1:] for c in TRACED], ids=[c[0] for c in TRACED])
def test_traced_model_gets_batch_norms(build, inserted, task) -> None:
    torch.manual_seed(0)
    model = build()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    treatment = batch_norm(model, SGD, task)
    changed = treatment.model
    assert isinstance(changed, fx.GraphModule) and norms(changed) == inserted
    change = treatment.changes[0]
    assert "call in forward" in change and f"({len(inserted)} layers)" in change
    # The original's layers are copied into the new model, not shared; the original is intact.
    for name, value in model.state_dict().items():
        assert torch.equal(changed.state_dict()[name], value)
        assert changed.state_dict()[name].data_ptr() != value.data_ptr()
        assert torch.equal(before[name], value)
    x = task.x_train[:16]
    assert changed(x).shape == model(x).shape == (16, 10)


def test_traced_model_trains(task) -> None:
    changed = batch_norm(Plain(), SGD, task).model.train()
    optimizer = torch.optim.SGD(changed.parameters(), lr=0.1)
    x, y = task.x_train[:64], task.y_train[:64]
    losses = []
    for _ in range(20):
        loss = task.loss_fn(changed(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert changed.fc1_bn.num_batches_tracked.item() == 20  # batch statistics in training mode
    changed.eval()
    assert changed(x[:1]).shape == (1, 10)  # running statistics: one example is enough


def test_traced_model_goes_through_fit(task) -> None:
    changed = batch_norm(Plain(), SGD, task).model
    result = gs.fit(changed, task, optimizer="sgd", lr=0.1, steps=5, batch_size=32, seed=0)
    assert not result.metrics["diverged"]


def test_sequential_models_keep_their_containers(task) -> None:
    model = gs.models.mlp(64, 10, depth=3, width=16, activation="sigmoid", seed=0)
    changed = batch_norm(model, SGD, task).model
    assert isinstance(changed, nn.Sequential) and not isinstance(changed, fx.GraphModule)
    assert norms(changed) == [nn.BatchNorm1d] * 2


# (id, model class, words of the reason)
NOT_APPLICABLE = [
    ("control-flow", Branching, "cannot trace its forward (control flow"),
    ("already-normalised", Normalised, "no hidden Linear/Conv"),
    ("per-step-linear", PerStep, "no hidden Linear/Conv"),
]


@pytest.mark.parametrize(
    ("build", "words"), [c[1:] for c in NOT_APPLICABLE], ids=[c[0] for c in NOT_APPLICABLE]
)
def test_batch_norm_says_why_it_does_not_apply(build, words, task) -> None:
    with pytest.raises(NotApplicable, match=words.replace("(", r"\(")):
        batch_norm(build(), SGD, task)


def test_probe_leaves_the_models_norm_statistics_alone(task) -> None:
    class Mixed(Normalised):
        def __init__(self) -> None:
            super().__init__()
            self.fc0 = nn.Linear(64, 64)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(torch.relu(self.fc0(x)))

    treatment = batch_norm(Mixed(), SGD, task)
    assert treatment.model.bn.num_batches_tracked.item() == 0
    assert norms(treatment.model) == [nn.BatchNorm1d] * 2
