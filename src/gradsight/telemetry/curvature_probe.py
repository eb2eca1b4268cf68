"""`curv/lambda_max`, `curv/lambda_min` (and `curv/trace`) of the loss Hessian during training.

Opt-in and costly: a few dozen Hessian-vector products by Lanczos (and Hutch++ for the
trace) on a fixed batch, each read back on the host.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from gradsight.telemetry.recorder import Recorder


class CurvatureProbe:
    """Hessian extremes at the current weights, logged when `measure` is called.

    Args:
        recorder: The watch's recorder.
        model: The model.
        loss_fn: `loss_fn(model(x), y)`.
        batch: `(x, y)`.
        trace: Also estimate the trace.
    """

    def __init__(
        self,
        recorder: Recorder,
        model: nn.Module,
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        batch: tuple[Tensor, Tensor],
        trace: bool,
    ) -> None:
        self.recorder, self.model, self.loss_fn = recorder, model, loss_fn
        self.batch, self.trace = batch, trace

    def measure(self) -> None:
        """Estimate and log (the model's forward passes here are not training steps: the
        caller keeps its hooks quiet meanwhile)."""
        from gradsight.curvature import curvature_metrics

        step = self.recorder.step
        metrics = curvature_metrics(
            self.model, self.loss_fn, self.batch, trace=self.trace, seed=step
        )
        self.recorder.history.log_many(step, metrics)
