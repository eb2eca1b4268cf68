"""The device-to-host transfer: statistics queued on the device, moved in one copy per step.

A quantity queues 1-D device tensors with a host consumer; `Transfer.sync` concatenates
everything queued, copies it to the host once (the one host sync of a logged step) and
hands each consumer its slices. A quantity that gathers many small values during a step
registers a producer, which queues them as one group when the transfer runs. Under
torch.distributed the queued values are first combined across processes, one collective per
kind of reduction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

Consumer = Callable[[int, list[np.ndarray]], None]


class Pending(NamedTuple):
    """Device values waiting for the host.

    Attributes:
        step: The step they belong to.
        tensors: 1-D tensors on the device.
        consume: Called as `consume(step, host_arrays)` after the transfer.
        ops: How each tensor combines across processes ("sum", "max", "mean"); None when it
            is the same on every process (gradients after DDP's all-reduce, weights).
    """

    step: int
    tensors: list[Tensor]
    consume: Consumer
    ops: list[str] | None


def process_group() -> tuple[int, int]:
    """(world size, rank) of the default torch.distributed group; (1, 0) without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class Transfer:
    """The queue of device values and its single host copy.

    Args:
        world: Number of processes that queue the same values (1 without torch.distributed).
    """

    def __init__(self, world: int = 1) -> None:
        self.world = world
        self.pending: list[Pending] = []
        # Called first by `sync`, to queue what they gathered since the last transfer.
        self.producers: list[Callable[[], None]] = []

    def send(
        self, step: int, tensors: list[Tensor], consume: Consumer, ops: list[str] | None = None
    ) -> None:
        """Queue 1-D device tensors; `consume(step, host_arrays)` runs after the transfer."""
        self.pending.append(Pending(step, tensors, consume, ops))

    def drop(self) -> None:
        """Forget what is queued (a multi-process job that did not finish)."""
        for produce in self.producers:
            produce()
        self.pending = []

    def sync(self) -> None:
        """Move every queued value to the host in one copy, then run the consumers."""
        for produce in self.producers:
            produce()
        pending, self.pending = self.pending, []
        if self.world > 1:
            pending = self._all_reduce(pending)
        tensors = [t for item in pending for t in item.tensors]
        if not tensors:
            return
        device = tensors[0].device
        tensors = [t if t.device == device else t.to(device) for t in tensors]
        host = torch.cat(tensors).double().cpu().numpy()  # the one host sync
        offset = 0
        for item in pending:
            arrays = []
            for t in item.tensors:
                arrays.append(host[offset : offset + t.numel()])
                offset += t.numel()
            item.consume(item.step, arrays)

    def _all_reduce(self, pending: list[Pending]) -> list[Pending]:
        """Combine the queued values across processes: one collective per kind of reduction.

        Every process logs the same steps of the same model (SPMD), so the queues line up.
        """
        import torch.distributed as dist

        slots: dict[str, list[tuple[int, int]]] = {"sum": [], "max": [], "mean": []}
        for i, item in enumerate(pending):
            for j, op in enumerate(item.ops or ()):
                if op is not None:
                    slots[op].append((i, j))
        groups = [list(item.tensors) for item in pending]
        for op, places in slots.items():
            if not places:
                continue
            parts = [groups[i][j].reshape(-1).double() for i, j in places]
            flat = torch.cat(parts)
            dist.all_reduce(flat, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
            if op == "mean":
                flat /= self.world
            for (i, j), piece in zip(places, flat.split([p.numel() for p in parts]), strict=True):
                groups[i][j] = piece
        return [item._replace(tensors=group) for item, group in zip(pending, groups, strict=True)]
