"""The vectorised activation statistics against a per-module loop in float64, and the
statistics of a step of several forward passes against torch on the concatenated outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import gradsight as gs
from gradsight.telemetry.activation_summary import HostCalls, PreviousMeans, summarize
from gradsight.telemetry.stats import (
    SATURATING_KINDS,
    SIGMOID_SATURATED_DISTANCE,
    TANH_SATURATED_ABS,
)


def _call(rng, name, kind, rows, units):
    """One call's host values, from an explicit output (rows, units)."""
    y = rng.normal(size=(rows, units))
    if kind == "relu":
        y = np.maximum(y, 0) - 0.01 * (rng.random() < 0.3)
        y[:, 0] = 0.0  # a dead unit
    if kind == "sigmoid":
        y = 1 / (1 + np.exp(-3 * y))
    if kind == "tanh":
        y = np.tanh(2 * y)
    counted = np.nan
    if kind == "sigmoid":
        counted = float(np.sum(np.abs(y - 0.5) > SIGMOID_SATURATED_DISTANCE))
    if kind == "tanh":
        counted = float(np.sum(np.abs(y) > TANH_SATURATED_ABS))
    if kind == "relu":
        counted = float(np.sum(y <= 0))
    return name, kind, y, counted


def _host(calls):
    host = HostCalls()
    for name, kind, y, counted in calls:
        host.names.append(name)
        host.kinds.append(kind)
        host.counts.append(float(y.size))
        host.squares.append(np.array([np.sum(y * y)]))
        host.counted.append(np.array([counted]))
        host.units.append(y.sum(axis=0))
        host.sizes.append(y.shape[1])
        if kind == "relu":
            host.maxima.append(y.max(axis=0))
    return host


def _reference(calls, previous: dict) -> dict:
    """Per module: its calls' outputs with the units of its first call, and all its values."""
    out: dict[tuple[str, str], float] = {}
    for name in dict.fromkeys(c[0] for c in calls):
        mine = [c for c in calls if c[0] == name]
        kind = mine[0][1]
        values = np.concatenate([c[2].ravel() for c in mine])
        same = np.concatenate([c[2] for c in mine if c[2].shape[1] == mine[0][2].shape[1]])
        mean, std = values.mean(), values.std()
        out[("act/mean", name)], out[("act/std", name)] = mean, std
        if kind in SATURATING_KINDS:
            out[("act/saturated", name)] = sum(c[3] for c in mine) / values.size
        if kind == "relu":
            out[("act/dead", name)] = float(np.mean(same.max(axis=0) <= 0))
            out[("act/zero_frac", name)] = float(np.mean(values <= 0))
        unit_mean = same.mean(axis=0)
        if name in previous and previous[name].shape == unit_mean.shape:
            shift = np.mean(np.abs(unit_mean - previous[name]))
            out[("act/drift", name)] = shift / std
        previous[name] = unit_mean
    return out


def _rows(rows) -> dict:
    return {
        (stat, layer): value
        for names, layers, values in rows
        for stat, layer, value in zip(names, layers, values, strict=True)
    }


@pytest.mark.parametrize("repeated", [False, True])
def test_summary_matches_a_per_module_loop_over_steps_whose_modules_change(repeated):
    rng = np.random.default_rng(0)
    layouts = [
        [("fc1", "linear", 8), ("act1", "sigmoid", 8), ("fc2", "linear", 4), ("act2", "relu", 4)],
        [("fc1", "linear", 8), ("act1", "sigmoid", 8), ("fc2", "linear", 4), ("act2", "relu", 4)],
        [("fc1", "linear", 8), ("act1", "sigmoid", 8), ("tanh", "tanh", 5)],  # a module gone
        [("fc1", "linear", 8), ("act2", "relu", 4), ("tanh", "tanh", 6)],  # units changed
    ]
    previous, reference_previous = PreviousMeans(), {}
    for layout in layouts:
        calls = [_call(rng, name, kind, 16, units) for name, kind, units in layout]
        if repeated:  # micro-batches, a cell over time, and one call over other units
            calls += [_call(rng, name, kind, 7, units) for name, kind, units in layout[:2]]
            calls.append(_call(rng, "fc1", "linear", 3, 5))
        measured = _rows(summarize(_host(calls), previous))
        expected = _reference(calls, reference_previous)
        assert measured.keys() == expected.keys()
        for key, value in expected.items():
            assert measured[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_a_step_of_two_forward_passes_has_the_statistics_of_both_batches():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.Sigmoid())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    outputs: dict[str, list[torch.Tensor]] = {"1": [], "3": []}
    for name in outputs:
        model.get_submodule(name).register_forward_hook(
            lambda m, a, out, name=name: outputs[name].append(out.detach().double())
        )
    batches = [torch.randn(5, 6) * 3, torch.randn(9, 6) - 1]
    with gs.watch(model, optimizer) as watch:
        optimizer.zero_grad()
        for x in batches:
            model(x).sum().backward()
        optimizer.step()
    history = watch.history
    relu = torch.cat(outputs["1"])
    sigmoid = torch.cat(outputs["3"])
    assert history.last("act/mean", "1") == pytest.approx(relu.mean().item(), rel=1e-6)
    assert history.last("act/std", "1") == pytest.approx(relu.std(correction=0).item(), rel=1e-5)
    dead = (relu.amax(0) <= 0).double().mean().item()
    assert history.last("act/dead", "1") == pytest.approx(dead)
    assert history.last("act/zero_frac", "1") == pytest.approx((relu <= 0).double().mean().item())
    saturated = ((sigmoid - 0.5).abs() > SIGMOID_SATURATED_DISTANCE).double().mean().item()
    assert history.last("act/saturated", "3") == pytest.approx(saturated, abs=1e-6)
    assert math.isfinite(history.last("act/grad_norm", "1"))


def test_a_centred_sigmoid_saturates_where_the_sigmoid_does():
    """sigmoid(z) - 1/2 has the sigmoid's derivative: the same units are flat."""
    task_x = torch.randn(64, 6, generator=torch.Generator().manual_seed(0)) * 4
    saturation = {}
    for name in ("sigmoid", "centered_sigmoid"):
        model = gs.models.mlp(6, 3, depth=2, width=32, activation=name, seed=0)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        outputs = []
        model.act1.register_forward_hook(lambda m, a, out, kept=outputs: kept.append(out.detach()))
        with gs.watch(model, optimizer) as watch:
            model(task_x).sum().backward()
            optimizer.step()
        centre = 0.5 if name == "sigmoid" else 0.0
        flat = ((outputs[0] - centre).abs() > SIGMOID_SATURATED_DISTANCE).double().mean().item()
        saturation[name] = watch.history.last("act/saturated", "act1")
        assert saturation[name] == pytest.approx(flat)
    assert 0.05 < saturation["sigmoid"] == pytest.approx(saturation["centered_sigmoid"])
