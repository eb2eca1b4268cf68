"""The pytorch/examples MNIST CNN, scaled to scikit-learn's 8x8 digits.

After pytorch/examples `mnist/main.py`: `class Net` with conv1, conv2, dropout1, dropout2,
fc1, fc2 and functional activations in the forward (`F.relu`, `F.max_pool2d`,
`torch.flatten`, `F.log_softmax`), `F.nll_loss`, `optim.Adadelta(lr=1.0)` and
`StepLR(step_size=1, gamma=0.7)` stepped once per epoch. The 28x28 kernels become 3x3
convolutions and one 2x2 pool for 8x8 images. Options inject pathologies: very negative
biases (dead ReLUs), or `torch.sigmoid` with a large initialisation (saturated units).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset

from gradsight.zoo.base import (
    AfterStep,
    Setup,
    dead_fraction,
    digits_images,
    grad_norms,
    module_outputs,
)

LAYERS = ("conv1", "conv2", "fc1")  # the layers followed by the activation


class Net(nn.Module):
    """pytorch/examples' MNIST Net for 1x8x8 inputs.

    Args:
        activation: "relu" (as in the example) or "sigmoid" (`torch.sigmoid` in its place).
    """

    def __init__(self, activation: str = "relu") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, 1)
        self.conv2 = nn.Conv2d(16, 32, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(128, 64)
        self.fc2 = nn.Linear(64, 10)
        self.activation = activation

    def act(self, x: torch.Tensor) -> torch.Tensor:
        """The nonlinearity, functional as in the example."""
        return F.relu(x) if self.activation == "relu" else torch.sigmoid(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)  # (B, 16, 6, 6)
        x = self.act(x)
        x = self.conv2(x)  # (B, 32, 4, 4)
        x = self.act(x)
        x = F.max_pool2d(x, 2)  # (B, 32, 2, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)  # (B, 128)
        x = self.fc1(x)
        x = self.act(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def build(
    seed: int = 0,
    *,
    activation: str = "relu",
    bias_init: float | None = None,
    weight_std: float | None = None,
    lr: float = 1.0,
    gamma: float = 0.7,
    batch_size: int = 64,
) -> Setup:
    """The example's Net, optimizer, scheduler and loop on 8x8 digits.

    Args:
        seed: Seeds the split, the initialisation, dropout and the shuffling.
        activation: "relu" or "sigmoid".
        bias_init: When given, every conv/linear bias of conv1, conv2, fc1 is set to it.
        weight_std: When given, the weights of conv1, conv2, fc1 are drawn from N(0, std^2).
        lr: Adadelta's learning rate (the example's 1.0).
        gamma: StepLR's decay per epoch.
        batch_size: Images per step (the example's 64).
    """
    x_train, y_train, x_test, y_test = digits_images(seed)
    generator = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(
        TensorDataset(x_train, y_train), batch_size=batch_size, shuffle=True, generator=generator
    )
    torch.manual_seed(seed)
    model = Net(activation)
    with torch.no_grad():
        for name in LAYERS:
            layer = getattr(model, name)
            if weight_std is not None:
                layer.weight.normal_(0.0, weight_std)
            if bias_init is not None:
                layer.bias.fill_(bias_init)
    optimizer = optim.Adadelta(model.parameters(), lr=lr)

    def train(steps: int, after_step: AfterStep) -> None:
        scheduler = StepLR(optimizer, step_size=1, gamma=gamma)
        done = 0
        while done < steps:  # one epoch per pass, as the example's `for epoch in ...`
            model.train()
            for data, target in train_loader:
                optimizer.zero_grad()
                output = model(data)
                loss = F.nll_loss(output, target)
                loss.backward()
                optimizer.step()
                after_step(loss.detach())
                done += 1
                if done == steps:
                    break
            scheduler.step()

    def probe() -> dict[str, float]:
        return _probe(model, x_test, y_test)

    return Setup(model, optimizer, train, probe)


def unit_activity(model: Net, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Pre-activations of conv1, conv2 and fc1 on `x`, read by forward hooks (eval mode).

    Returns:
        Layer name -> pre-activations (B, C, H, W) or (B, F).
    """
    return module_outputs(model, LAYERS, x)


def saturated_fraction(pre: torch.Tensor) -> float:
    """Fraction of sigmoid outputs whose derivative s(1 - s) is below 5% of its maximum 1/4."""
    s = torch.sigmoid(pre)
    return float((s * (1 - s) < 0.05 * 0.25).float().mean())


def _probe(model: Net, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Held-out loss and accuracy, dead or saturated units per layer, layer gradients."""
    pre = unit_activity(model, x)
    result = {}
    for name, values in pre.items():
        if model.activation == "relu":
            result[f"dead_{name}"] = dead_fraction(values)
        else:
            result[f"saturated_{name}"] = saturated_fraction(values)
    model.eval()
    model.zero_grad(set_to_none=True)
    output = model(x)
    loss = F.nll_loss(output, y)
    loss.backward()
    model.train()
    norms = grad_norms(model, {"conv1": "conv1.", "fc2": "fc2."})
    model.zero_grad(set_to_none=True)
    return {
        "val_loss": float(loss.detach()),
        "val_accuracy": float((output.argmax(1) == y).float().mean()),
        "chance_loss": math.log(10),
        **result,
        "grad_conv1": norms["conv1"],
        "grad_fc2": norms["fc2"],
    }
