"""The `Task`: a supervised problem held in memory, with its loss and its metric."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gradsight.errors import InputError

LossName = Literal["cross_entropy", "mse"]
MetricName = Literal["accuracy", "mse"]

# Targets equal to this are left out of the loss and the accuracy (torch's own default).
IGNORE_INDEX = -100


def logits_of(output: Any) -> Tensor:
    """A model's output tensor: the output itself, or its `.logits` (Hugging Face outputs)."""
    if isinstance(output, Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, Tensor):
        return logits
    raise TypeError(
        f"the model returned a {type(output).__name__}; the task needs a tensor of logits or "
        "outputs, or an object with a .logits tensor"
    )


@dataclass(frozen=True)
class Task:
    """A supervised problem: train/test tensors, the loss to minimise and the metric to report.

    Classification targets are integer class indices of shape (N,) or, for sequence tasks,
    (N, T) with `IGNORE_INDEX` where a step is not scored; the model then returns logits of
    shape (N, C) or (N, T, C). Regression targets are float tensors of the model's output shape.

    Attributes:
        name: Registry name of the task ("digits", "adding", ...).
        x_train: Training inputs, (N, *input_shape).
        y_train: Training targets.
        x_test: Test inputs.
        y_test: Test targets.
        loss: "cross_entropy" or "mse".
        metric: "accuracy" (higher is better) or "mse" (lower is better).
        input_shape: Shape of one input example.
        output_size: Number of classes, or number of regression outputs.
        options: The options the task was generated with (seed, standardize, sizes, ...).
        description: One line for people: what the task is and what a trivial model scores.
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    loss: LossName
    metric: MetricName
    input_shape: tuple[int, ...]
    output_size: int
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def higher_is_better(self) -> bool:
        """Whether a larger metric value is better (accuracy) or worse (mse)."""
        return self.metric == "accuracy"

    def loss_fn(self, output: Any, target: Tensor) -> Tensor:
        """Mean loss of a batch; sequence logits (N, T, C) are scored step by step. The
        output may be a model's output object with `.logits` (Hugging Face models)."""
        output = logits_of(output)
        if self.loss == "cross_entropy":
            if output.dim() == 3:  # (N, T, C) -> (N*T, C)
                output, target = output.flatten(0, 1), target.flatten()
            return F.cross_entropy(output, target, ignore_index=IGNORE_INDEX)
        return F.mse_loss(output, target)

    def metric_fn(self, output: Any, target: Tensor) -> Tensor:
        """Metric of a batch as a 0-d tensor (no host sync)."""
        output = logits_of(output)
        if self.metric == "accuracy":
            scored = target != IGNORE_INDEX
            correct = (output.argmax(dim=-1) == target) & scored
            return correct.sum() / scored.sum().clamp(min=1)
        return F.mse_loss(output, target)

    def split(self, name: Literal["train", "test"]) -> tuple[Tensor, Tensor]:
        """The (inputs, targets) of one split."""
        if name == "train":
            return self.x_train, self.y_train
        if name == "test":
            return self.x_test, self.y_test
        raise InputError(f"split must be 'train' or 'test', got {name!r}")

    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, split: Literal["train", "test"] = "test", batch_size: int = 4096
    ) -> dict[str, float]:
        """Loss and metric of `model` on a whole split, in eval mode, averaged over examples.

        The model's train/eval mode is restored afterwards.
        """
        x, y = self.split(split)
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        loss_sum = torch.zeros((), device=device)
        metric_sum = torch.zeros((), device=device)
        try:
            for start in range(0, len(x), batch_size):
                xb = x[start : start + batch_size].to(device)
                yb = y[start : start + batch_size].to(device)
                out = model(xb)
                loss_sum += self.loss_fn(out, yb) * len(xb)
                metric_sum += self.metric_fn(out, yb) * len(xb)
        finally:
            model.train(was_training)
        loss, metric = (torch.stack([loss_sum, metric_sum]) / len(x)).tolist()  # one host sync
        return {"loss": loss, self.metric: metric}

    def to(self, device: torch.device | str) -> Task:
        """A copy of the task with its tensors on `device`."""
        moved = {k: getattr(self, k).to(device) for k in ("x_train", "y_train", "x_test", "y_test")}
        return Task(**{**self.__dict__, **moved})

    def __repr__(self) -> str:
        return (
            f"Task({self.name!r}, train={tuple(self.x_train.shape)}, "
            f"test={tuple(self.x_test.shape)}, loss={self.loss!r}, metric={self.metric!r}, "
            f"output_size={self.output_size})"
        )
