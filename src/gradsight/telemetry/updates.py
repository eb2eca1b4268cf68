"""Weight and update statistics per layer: `weight/norm`, `update/norm`, `update/ratio`; the
learning rate of each param group, `lr`.

The update is the real change of every weight across the optimizer step, whatever the rule
(momentum, Adam, weight decay, a manual `p.data.add_`): a copy of the weights before the
step is subtracted from the weights after it. `update/ratio` = |dW| / |W| per layer, the
rule-of-thumb ~1e-3 of a healthy rate (Karpathy, CS231n).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gradsight.telemetry.history import History
from gradsight.telemetry.layers import ParameterLayout
from gradsight.telemetry.recorder import Recorder
from gradsight.telemetry.stats import layer_norms


class Updates:
    """Snapshot before the step (`snapshot`), difference after it (`record`)."""

    def __init__(self, recorder: Recorder, layout: ParameterLayout) -> None:
        self.recorder, self.layout = recorder, layout
        self._snapshot: list[Tensor] | None = None
        self.taken = False

    def snapshot(self) -> None:
        """Copy the weights (into a buffer kept between steps)."""
        # foreach ops on .detach() views: on the leaf parameters themselves they are far slower.
        views = [p.detach() for p in self.layout.params]
        if self._snapshot is None:
            self._snapshot = [v.clone() for v in views]
        else:
            torch._foreach_copy_(self._snapshot, views)
        self.taken = True

    def record(self) -> None:
        """Queue the norms of the change since the snapshot and of the weights."""
        views = [p.detach() for p in self.layout.params]
        torch._foreach_sub_(self._snapshot, views)  # in place: the snapshot becomes -update
        tensors = [
            torch.stack(torch._foreach_norm(self._snapshot)),
            torch.stack(torch._foreach_norm(views)),
        ]
        self.recorder.send(tensors, self._log)
        self.taken = False

    def _log(self, step: int, values: list[np.ndarray]) -> None:
        layout = self.layout
        count = len(layout.layers)
        update = layer_norms(values[0], layout.layer_of, count)
        weight = layer_norms(values[1], layout.layer_of, count)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = update / weight
        for stat, per_layer in (
            ("weight/norm", weight),
            ("update/norm", update),
            ("update/ratio", ratio),
        ):
            self.recorder.history.log_rows(step, [stat] * count, layout.layers, per_layer.tolist())


class LearningRates:
    """`lr` of each param group every step (layer "" for the first group, "groupN" for the
    others), held back until the History is read or flushed, or logged at once with sinks."""

    def __init__(self, history: History) -> None:
        self.history = history
        self._held: list[tuple[int, list[float]]] = []
        history.add_row_source(self.drain)

    def note(self, step: int, param_groups: list[dict]) -> None:
        """Note the rates of the step's param groups."""
        self._held.append((step, [group["lr"] for group in param_groups]))
        if self.history.sinks:
            self.drain()

    def drain(self) -> None:
        """Log the held rates as rows."""
        held, self._held = self._held, []
        steps, layers, values = [], [], []
        for step, rates in held:
            steps += [step] * len(rates)
            layers += [""] + [f"group{i}" for i in range(1, len(rates))]
            values += rates
        if held:
            self.history.log_steps(steps, ["lr"] * len(steps), layers, values)
