"""Values the training loop logs itself (`watch.log(loss=loss)`): tensors stay on the device
until the step's transfer; numbers are checked at once. Rows are held back until the History
is read or flushed (`History.add_row_source`), or logged at once when it has sinks."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
from torch import Tensor

from gradsight.errors import InputError
from gradsight.telemetry.recorder import Recorder


class UserValues:
    """Scalars logged by the loop; `latest` keeps the last host value of each name.

    Args:
        recorder: The watch's recorder.
        on_value: Called as `on_value(name, step, value)` once each value is on the host.
    """

    def __init__(self, recorder: Recorder, on_value: Callable[[str, int, float], None]) -> None:
        self.recorder, self.on_value = recorder, on_value
        self.latest: dict[str, float] = {}
        self._held: list[tuple[int, str, float]] = []
        recorder.history.add_row_source(self.drain)

    def log(self, **values: Tensor | float | np.number | np.ndarray) -> None:
        """Record scalars for the step in progress (see `Watch.log`)."""
        for name, value in values.items():
            if isinstance(value, Tensor):
                if value.numel() != 1:
                    shape = tuple(value.shape)
                    raise InputError(f"watch.log: {name!r} must be a scalar, got shape {shape}")
                self.recorder.send([value.detach().reshape(1)], partial(self._host, name), ["mean"])
            elif _is_number(value):
                self._host(name, self.recorder.step, [np.array([value], dtype=np.float64)])
            else:
                kind = type(value).__name__
                raise InputError(f"watch.log: {name!r} must be a number or a tensor, got {kind}")

    def _host(self, name: str, step: int, values: list[np.ndarray]) -> None:
        number = float(values[0][0])
        self._held.append((step, name, number))
        self.latest[name] = number
        self.on_value(name, step, number)
        if self.recorder.history.sinks:
            self.drain()

    def drain(self) -> None:
        """Log the held values as rows."""
        held, self._held = self._held, []
        if held:
            steps, names, values = zip(*held, strict=True)
            self.recorder.history.log_steps(steps, names, [""] * len(held), values)


def _is_number(value: object) -> bool:
    """A real number: int, float, a numpy integer or float scalar, or a 0-d array of one.

    Booleans (Python's and numpy's) are not numbers here: `log(done=True)` is a mistake.
    """
    if isinstance(value, np.ndarray):
        if value.ndim != 0:
            return False
        value = value[()]
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (int, float, np.integer, np.floating))
