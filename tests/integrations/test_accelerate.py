"""`gs.watch` on a plain `accelerator.prepare(...)` loop: pre-clip, accumulated gradients."""

from __future__ import annotations

import math

import pytest
import torch

accelerate = pytest.importorskip("accelerate")

import gradsight as gs  # noqa: E402

ACCUMULATION, MAX_NORM = 2, 0.1


def setup(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    x, y = torch.randn(64, 8) * 10, torch.randn(64, 1)
    batches = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 64, 8)]
    return model, batches


def accelerated_loop(read_gradients: str = "auto"):
    """The loop of Accelerate's docs: accumulate, clip when the gradients sync, step."""
    model, batches = setup()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    accelerator = accelerate.Accelerator(gradient_accumulation_steps=ACCUMULATION, cpu=True)
    model, optimizer = accelerator.prepare(model, optimizer)
    clipped_from = []
    with gs.watch(model, optimizer, read_gradients=read_gradients) as watch:
        for x, y in batches:
            with accelerator.accumulate(model):
                loss = torch.nn.functional.mse_loss(model(x), y)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    clipped_from.append(
                        float(accelerator.clip_grad_norm_(model.parameters(), MAX_NORM))
                    )
                optimizer.step()
                optimizer.zero_grad()
    return watch, clipped_from


def plain_loop():
    """The same training without Accelerate: per-layer norms before clipping."""
    model, batches = setup()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    norms = []
    for start in range(0, len(batches), ACCUMULATION):
        for x, y in batches[start : start + ACCUMULATION]:
            (torch.nn.functional.mse_loss(model(x), y) / ACCUMULATION).backward()
        linear = [(name, m) for name, m in model.named_children() if isinstance(m, torch.nn.Linear)]
        norms.append({name: torch.cat([m.weight.grad.flatten(), m.bias.grad]).norm().item()
                      for name, m in linear})  # fmt: skip
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)
        optimizer.step()
        optimizer.zero_grad()
    return norms


def test_accelerate_loop_reads_gradients_before_clipping():
    watch, clipped_from = accelerated_loop()
    assert watch.read_gradients == "backward"
    recorded = watch.history.table("grad/norm_global").iloc[:, 0].tolist()
    assert len(recorded) == len(clipped_from) == 4  # 8 micro-batches, 2 per step
    assert recorded == pytest.approx(clipped_from, rel=1e-6)
    assert min(recorded) > 10 * MAX_NORM  # clipping bit hard; the watch still sees the norm
    table = watch.history.table("grad/norm")
    for step, expected in enumerate(plain_loop()):
        for layer, value in expected.items():
            assert table.loc[step, layer] == pytest.approx(value, rel=1e-5)


def test_reading_at_the_step_sees_the_clipped_gradients():
    watch, _ = accelerated_loop(read_gradients="step")
    recorded = watch.history.table("grad/norm_global").iloc[:, 0].tolist()
    assert all(math.isclose(value, MAX_NORM, rel_tol=1e-4) for value in recorded)
