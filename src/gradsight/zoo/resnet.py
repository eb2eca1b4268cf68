"""A small ResNet written as torchvision writes it, trained as pytorch/examples imagenet does.

After torchvision `models/resnet.py`: `conv3x3`, `conv1x1`, `BasicBlock` (expansion 1,
`nn.ReLU(inplace=True)`, downsample shortcut), `ResNet(block, layers, num_classes,
norm_layer=...)` with its init loop (Kaiming normal, fan_out, BN weight 1 bias 0). For 16x16
digits the stem is a 3x3 convolution without max-pooling (the usual small-image change) and
the widths start at 8 instead of 64. Training follows pytorch/examples `imagenet/main.py`:
SGD with momentum 0.9 and weight decay 5e-4 (the CIFAR value), cross-entropy.

Options inject pathologies: `norm_layer=nn.Identity` removes batch norm (the residual
stream then doubles its variance at every block), `PlainBlock` drops the shortcut.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from gradsight.zoo.base import (
    AfterStep,
    Setup,
    dead_fraction,
    digits_images,
    grad_norms,
    module_outputs,
)


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the identity (or downsampled) input, then ReLU."""

    expansion: int = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        norm_layer: Callable[[int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x

        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)

        out = self.conv2(out)
        out = self.bn2(out)

        if self.downsample is not None:
            identity = self.downsample(x)

        out += identity
        out = self.relu(out)

        return out


class PlainBlock(BasicBlock):
    """BasicBlock without its shortcut: the "plain" network of He et al. 2016."""

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        norm_layer: Callable[[int], nn.Module] | None = None,
    ) -> None:
        super().__init__(inplanes, planes, stride, None, norm_layer)  # no shortcut to project

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)))


class ResNet(nn.Module):
    """torchvision's ResNet for small single-channel images.

    Args:
        block: BasicBlock or PlainBlock.
        layers: Blocks per stage (4 stages, strides 1, 2, 2, 2).
        num_classes: Outputs.
        width: Channels of the first stage (doubling per stage).
        norm_layer: Normalisation after each convolution (default nn.BatchNorm2d).
    """

    def __init__(
        self,
        block: type[BasicBlock],
        layers: list[int],
        num_classes: int = 10,
        width: int = 8,
        norm_layer: Callable[[int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        self._norm_layer = norm_layer
        self.inplanes = width
        self.conv1 = nn.Conv2d(1, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(
        self, block: type[BasicBlock], planes: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        norm_layer = self._norm_layer
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                norm_layer(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample, norm_layer)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, norm_layer=norm_layer))
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)  # (B, w, 16, 16)
        x = self.bn1(x)
        x = self.relu(x)

        x = self.layer1(x)  # (B, w, 16, 16)
        x = self.layer2(x)  # (B, 2w, 8, 8)
        x = self.layer3(x)  # (B, 4w, 4, 4)
        x = self.layer4(x)  # (B, 8w, 2, 2)

        x = self.avgpool(x)
        x = torch.flatten(x, 1)  # (B, 8w)
        x = self.fc(x)

        return x


def build(
    seed: int = 0,
    *,
    layers: tuple[int, int, int, int] = (1, 1, 1, 1),
    width: int = 8,
    batch_norm: bool = True,
    residual: bool = True,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    batch_size: int = 64,
) -> Setup:
    """A ResNet on 16x16 digits, with pytorch/examples' SGD loop.

    Args:
        seed: Seeds the split, the initialisation and the shuffling.
        layers: Blocks per stage; (1, 1, 1, 1) is a ResNet-10.
        width: Channels of the first stage.
        batch_norm: False passes `norm_layer=nn.Identity`.
        residual: False builds the plain network (PlainBlock).
        lr: SGD learning rate.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        batch_size: Images per step.
    """
    x_train, y_train, x_test, y_test = digits_images(seed, size=16)
    generator = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(
        TensorDataset(x_train, y_train), batch_size=batch_size, shuffle=True, generator=generator
    )
    torch.manual_seed(seed)
    block = BasicBlock if residual else PlainBlock
    norm_layer = None if batch_norm else nn.Identity
    model = ResNet(block, list(layers), num_classes=10, width=width, norm_layer=norm_layer)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(
        model.parameters(), lr, momentum=momentum, weight_decay=weight_decay
    )

    def train(steps: int, after_step: AfterStep) -> None:
        done = 0
        while done < steps:  # epochs
            model.train()
            for images, target in train_loader:
                output = model(images)
                loss = criterion(output, target)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                after_step(loss.detach())
                done += 1
                if done == steps:
                    break

    def probe() -> dict[str, float]:
        return _probe(model, criterion, x_test, y_test)

    return Setup(model, optimizer, train, probe)


def stage_outputs(model: ResNet, x: Tensor) -> dict[str, Tensor]:
    """Outputs of the stem and of each stage on `x` (eval mode, no grad), by forward hooks."""
    return module_outputs(model, ("relu", "layer1", "layer2", "layer3", "layer4"), x)


def _probe(model: ResNet, criterion: nn.Module, x: Tensor, y: Tensor) -> dict[str, float]:
    """Held-out loss and accuracy, activation size and dead channels (zero for every image
    and position) per stage, stem vs head gradients.

    The gradients are taken in train mode (batch statistics), as in training.
    """
    outputs = stage_outputs(model, x)
    rms = {name: float(out.square().mean().sqrt()) for name, out in outputs.items()}
    model.eval()
    with torch.no_grad():
        logits = model(x)
    model.train()
    model.zero_grad(set_to_none=True)
    criterion(model(x), y).backward()
    norms = grad_norms(model, {"stem": "conv1.", "fc": "fc."})
    model.zero_grad(set_to_none=True)
    return {
        "val_loss": float(criterion(logits, y)),
        "val_accuracy": float((logits.argmax(1) == y).float().mean()),
        "chance_loss": math.log(10),
        "rms_stem": rms["relu"],
        "rms_layer4": rms["layer4"],
        **{f"dead_{name}": dead_fraction(out) for name, out in outputs.items() if name != "relu"},
        "grad_stem": norms["stem"],
        "grad_fc": norms["fc"],
    }
