"""Leave the model and the RNG as they were: curvature probes must never change training."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import torch
from torch import nn


@contextmanager
def preserved(model: nn.Module) -> Iterator[None]:
    """Run a block that calls the model many times, then undo its side effects.

    - Buffers (batch-norm running statistics, `num_batches_tracked`) changed in place by
      training-mode forward passes are copied back. Every buffer is copied: comparing values
      would cost a host sync per buffer, and batch norm's update does not move the version
      counter. The copy goes through `.data` so that it does not move it either, and autograd
      graphs the caller still holds stay valid.
    - The global RNG state (CPU, and the CUDA devices of the parameters) is restored, so a
      training run draws the same random numbers with or without curvature probes.
    - cuDNN is switched off for models with recurrent modules on CUDA: its RNN kernels have no
      double backward ("double backwards is not supported for CuDNN RNNs").
    """
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    recurrent = any(isinstance(m, nn.RNNBase) for m in model.modules())
    with ExitStack() as stack:
        stack.enter_context(torch.random.fork_rng(devices=devices))
        if devices and recurrent:
            stack.enter_context(torch.backends.cudnn.flags(enabled=False))
        try:
            yield
        finally:
            with torch.no_grad():
                for buffer, saved in buffers:
                    buffer.data.copy_(saved)
