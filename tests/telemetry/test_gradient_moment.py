"""When gradients are read: at the optimizer step (after clipping) or after backward (before)."""

from __future__ import annotations

import pytest
import torch

import gradsight as gs

MAX_NORM = 0.01


def model_and_batches(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    batches = [(torch.randn(6, 4) * 5, torch.randn(6, 2)) for _ in range(6)]
    return model, batches


def reference_norms(accumulation: int) -> list[float]:
    """Global norms of the accumulated gradients, in float64, before clipping."""
    model, batches = model_and_batches()
    model = model.double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    norms = []
    for start in range(0, len(batches), accumulation):
        for x, y in batches[start : start + accumulation]:
            loss = torch.nn.functional.mse_loss(model(x.double()), y.double()) / accumulation
            loss.backward()
        norms.append(torch.cat([p.grad.flatten() for p in model.parameters()]).norm().item())
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)
        optimizer.step()
        optimizer.zero_grad()
    return norms


def watched(read_gradients: str, accumulation: int, skip_first_step: bool = False):
    model, batches = model_and_batches()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    with gs.watch(model, optimizer, read_gradients=read_gradients) as watch:
        if skip_first_step:  # a backward pass whose step never happens (a skipped batch)
            torch.nn.functional.mse_loss(model(batches[0][0]), batches[0][1]).backward()
            optimizer.zero_grad()
        for start in range(0, len(batches), accumulation):
            for x, y in batches[start : start + accumulation]:
                (torch.nn.functional.mse_loss(model(x), y) / accumulation).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)
            optimizer.step()
            optimizer.zero_grad()
    return watch


@pytest.mark.parametrize("accumulation", [1, 3], ids=["one-pass", "three-micro-batches"])
def test_backward_reads_the_accumulated_gradient_before_clipping(accumulation):
    watch = watched("backward", accumulation)
    recorded = watch.history.table("grad/norm_global").iloc[:, 0].tolist()
    assert recorded == pytest.approx(reference_norms(accumulation), rel=1e-5)
    assert watch.history.meta["gradients_read"] == "backward"


def test_step_reads_what_clipping_let_through():
    watch = watched("step", 1)
    recorded = watch.history.table("grad/norm_global").iloc[:, 0].tolist()
    assert recorded == pytest.approx([MAX_NORM] * len(recorded), rel=1e-4)


def test_a_backward_pass_without_its_step_leaves_nothing_behind():
    watch = watched("backward", 2, skip_first_step=True)
    recorded = watch.history.table("grad/norm_global").iloc[:, 0].tolist()
    assert recorded == pytest.approx(reference_norms(2), rel=1e-5)


def test_auto_reads_at_the_step_for_a_plain_optimizer():
    model, _ = model_and_batches()
    with gs.watch(model, torch.optim.SGD(model.parameters(), lr=0.1)) as watch:
        assert watch.read_gradients == "step"


def test_an_unknown_moment_is_refused():
    model, _ = model_and_batches()
    with pytest.raises(ValueError, match="read_gradients must be auto, step or backward"):
        gs.watch(model, read_gradients="clip")
