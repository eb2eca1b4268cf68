"""AMP on CPU: the watch reports the gradients the optimizer uses, i.e. unscaled ones."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import gradsight as gs

STEPS = 5


def net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3)
    )


def layer_grad_norm(layer):
    return float(torch.cat([layer.weight.grad.flatten(), layer.bias.grad]).double().norm())


def make_scaler(**options):
    try:
        return torch.amp.GradScaler("cpu", **options)
    except (AttributeError, RuntimeError, TypeError) as error:  # torch < 2.3
        pytest.skip(f"torch.amp.GradScaler('cpu') is not available: {error}")


def train(autocast, scaler=None, explicit_unscale=False, dtype=torch.bfloat16):
    """Returns the watch's History and the gradient norms read by hand before each step."""
    model = net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(1)
    by_hand = []
    with gs.watch(model, optimizer, activations_every=0, updates_every=1) as w:
        for _ in range(STEPS):
            x, y = torch.randn(64, 6, generator=g), torch.randint(0, 3, (64,), generator=g)
            with torch.autocast("cpu", dtype=dtype, enabled=autocast):
                loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            if scaler is None:
                loss.backward()
            else:
                scaler.scale(loss).backward()
                if explicit_unscale:  # as before gradient clipping
                    scaler.unscale_(optimizer)
                    by_hand.append([layer_grad_norm(model[i]) for i in (0, 2, 4)])
            if scaler is None:
                optimizer.step()
            else:
                scaler.step(optimizer)  # unscales first unless unscale_ already ran
                scaler.update()
            w.log(loss=loss)
    return w.history, by_hand


@pytest.fixture(scope="module")
def float32_reference():
    return train(autocast=False)[0]


CASES = [
    ("bf16-autocast", {"autocast": True}),
    ("bf16-gradscaler", {"autocast": True, "scaler": 2.0**12}),
    ("bf16-gradscaler-unscale_", {"autocast": True, "scaler": 2.0**12, "explicit_unscale": True}),
]


@pytest.mark.parametrize(("options"), [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_gradient_norms_are_unscaled(float32_reference, options):
    options = dict(options)
    if "scaler" in options:
        options["scaler"] = make_scaler(init_scale=options["scaler"])
    history, by_hand = train(**options)
    got, want = history.table("grad/norm"), float32_reference.table("grad/norm")
    assert list(got.index) == list(range(STEPS))
    # bf16 matmuls agree with float32 to ~1%; a scaled norm would be 4096x too large.
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=0.03)
    for name in ("update/norm", "grad/norm_global"):
        np.testing.assert_allclose(
            history.table(name).to_numpy(), float32_reference.table(name).to_numpy(), rtol=0.03
        )
    if by_hand:  # what the optimizer received, read by hand after unscale_: the same numbers
        np.testing.assert_allclose(got[["0", "2", "4"]].to_numpy(), by_hand, rtol=1e-6)


def test_a_step_gradscaler_skips_is_not_counted():
    # float16 (bf16 has float32's range and does not overflow): the first scale, 2**24,
    # overflows the half-precision backward pass, so GradScaler skips that optimizer step and
    # backs off to 2**12. The watch never sees the skipped step (and reports nothing).
    scaler = make_scaler(init_scale=2.0**24, backoff_factor=2.0**-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history, _ = train(autocast=True, scaler=scaler, dtype=torch.float16)
    assert scaler.get_scale() == 2.0**12
    assert list(history.table("grad/norm").index) == list(range(STEPS - 1))
    assert np.isfinite(history.table("grad/norm").to_numpy()).all()
    assert "nonfinite/module" not in history.names()
