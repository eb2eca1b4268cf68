"""Vanishing gradients over time, measured on torch's own nn.RNN."""

import torch
import torch.nn.functional as F
from torch import nn

import gradsight as gs


class LastStepClassifier(nn.Module):
    """Embedding -> nn.RNN -> a linear head on the last time step."""

    def __init__(self, hidden=32, rnn="RNN"):
        super().__init__()
        self.embed = nn.Embedding(8, hidden)
        self.rnn = getattr(nn, rnn)(hidden, hidden)
        self.head = nn.Linear(hidden, 2)

    def forward(self, x):  # (T, B)
        out, _ = self.rnn(self.embed(x))
        return self.head(out[-1])


def train(model, per_step_loss=False, steps=20, length=40):
    g = torch.Generator().manual_seed(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    with gs.watch(model, optimizer, activations_every=2) as w:
        for _ in range(steps):
            x = torch.randint(0, 8, (length, 16), generator=g)
            y = (x[0] % 2).long()  # the label sits at the first step
            if per_step_loss:
                out, _ = model.rnn(model.embed(x))
                loss = F.cross_entropy(model.head(out).reshape(-1, 2), y.repeat(length))
            else:
                loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            w.log(loss=loss)
    return [f for f in gs.diagnose(w.history) if "input of rnn" in f.summary]


def test_a_vanilla_rnn_read_at_its_last_step_loses_the_early_gradient():
    torch.manual_seed(0)
    found = train(LastStepClassifier())
    assert len(found) == 1
    assert found[0].kind == "vanishing_gradients"
    assert found[0].evidence["first_last_ratio"] < 1e-3
    assert found[0].remedies[0].name == "lstm_cell"


def test_a_loss_at_every_step_gives_each_step_its_gradient():
    torch.manual_seed(0)
    assert train(LastStepClassifier(), per_step_loss=True) == []
