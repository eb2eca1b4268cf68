"""The sink protocol: where a History's rows go besides the History itself.

A sink is anything with `write(step, names, layers, values)` and `close()`; `History.log_rows`
hands each logged group to its sinks. The sinks for trackers live in `gradsight.integrations`
(TensorBoard, W&B, MLflow). A watch option that names a sink (`gs.watch(tensorboard_dir=...)`)
finds it through the `gradsight.sinks` entry-point group (`importlib.metadata`), where the
package that provides it declares a factory `factory(target, model) -> Sink`: telemetry never
imports an integration.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from torch import nn

from gradsight.errors import MissingPackageError

SINK_ENTRY_POINTS = "gradsight.sinks"


@runtime_checkable
class Sink(Protocol):
    """Receives the rows of one logged group: parallel sequences that share a step."""

    def write(
        self, step: int, names: Sequence[str], layers: Sequence[str], values: Sequence[float]
    ) -> None: ...

    def close(self) -> None: ...


def named_sink(name: str, target: Any, model: nn.Module) -> Sink:
    """The sink registered as `name` in the `gradsight.sinks` entry points, built for `target`
    (a folder, a run) and `model`.

    Raises:
        MissingPackageError: No installed package provides a sink of that name.
    """
    found = entry_points(group=SINK_ENTRY_POINTS, name=name)
    if not found:
        raise MissingPackageError(
            f"no sink named {name!r} is installed (entry points {SINK_ENTRY_POINTS!r}); "
            "reinstall gradsight"
        )
    return next(iter(found)).load()(target, model)
