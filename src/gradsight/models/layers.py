"""Small modules the builders share: a residual wrapper and an input reshaper."""

from __future__ import annotations

import math

from torch import Tensor, nn

from gradsight.errors import InputError


class Residual(nn.Module):
    """y = x + body(x) (He et al. 2016, "Deep residual learning for image recognition").

    The body is an `nn.Sequential`, so layers can be inserted into it later (a norm, say).

    Attributes:
        body: The residual branch; its output has the shape of its input.
    """

    def __init__(self, body: nn.Sequential) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class Reshape(nn.Module):
    """Reshapes (B, prod(shape)) or (B, *any shape with as many elements) to (B, *shape).

    Lets a conv net take flat feature vectors as well as shaped images or signals.

    Attributes:
        shape: The shape of one example after reshaping, e.g. (1, 8, 8).
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1:].numel() != math.prod(self.shape):
            raise InputError(
                f"expected inputs of shape (B, {math.prod(self.shape)}) or (B, *{self.shape}), "
                f"got {tuple(x.shape)}"
            )
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"
