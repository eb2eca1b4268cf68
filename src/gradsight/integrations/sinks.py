"""Sinks: where a History's rows go besides the History itself (TensorBoard, Lightning loggers).

A sink is anything with `write(step, names, layers, values)` and `close()`: the same rows,
in the same groups, that `History.log_rows` receives. Add one to `history.sinks` and a watch
writing to that History feeds it live (`gs.watch(..., tensorboard_dir=...)` does this).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class Sink(Protocol):
    """Receives the rows of one logged group: parallel sequences that share a step."""

    def write(
        self, step: int, names: Sequence[str], layers: Sequence[str], values: Sequence[float]
    ) -> None: ...

    def close(self) -> None: ...


def metric_tag(name: str, layer: str = "") -> str:
    """`gradsight/<name>/<layer>`, or `gradsight/<name>` for a global row ("" layer)."""
    return f"gradsight/{name}/{layer}" if layer else f"gradsight/{name}"
