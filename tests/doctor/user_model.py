"""A user's model defined outside gradsight: its own class, nn.Sigmoid, 10 Linear layers."""

from itertools import pairwise

from torch import nn


class DeepSigmoid(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        sizes = [64] + [32] * 9 + [10]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(pairwise(sizes)):
            layers.append(nn.Linear(a, b))
            if i < 9:
                layers.append(nn.Sigmoid())
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def build():
    return DeepSigmoid()


def not_a_model(seed=0):
    return "oops"
