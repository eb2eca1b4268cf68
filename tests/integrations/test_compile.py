"""gs.watch on a torch.compile'd model: the same statistics as in eager mode.

The watch unwraps the compiled module and hooks the original one; dynamo traces those hooks
into the compiled forward (backend "aot_eager" exercises exactly that, without code
generation), and the gradients and updates are read outside the graph (inductor case).
"""

import time
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import gradsight as gs

STEPS = 4


def net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)
    )


def train(backend, activations_every):
    model = net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    run = torch.compile(model, backend=backend) if backend else model
    g = torch.Generator().manual_seed(1)
    options = {"activations_every": activations_every, "updates_every": 2}
    with gs.watch(run, optimizer, **options) as w:
        for _ in range(STEPS):
            x, y = torch.randn(32, 6, generator=g), torch.randint(0, 3, (32,), generator=g)
            loss = nn.functional.cross_entropy(run(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            w.log(loss=loss)
    return w.history


ACTIVATION_STATS = ["act/mean", "act/std", "act/saturated", "act/dead", "act/grad_norm"]
CASES = [
    # (backend, activations_every, stats compared, rtol)
    ("aot_eager", 2, ["grad/norm", "update/norm", "loss", *ACTIVATION_STATS], 1e-6),
    ("inductor", 0, ["grad/norm", "grad/max_abs", "update/norm", "loss"], 1e-5),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backend", "activations_every", "stats", "rtol"), CASES, ids=["aot_eager", "inductor"]
)
def test_compiled_model_statistics_equal_eager(backend, activations_every, stats, rtol):
    torch._dynamo.reset()
    eager = train(None, activations_every)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*script_method.*")  # inside torch
            compiled = train(backend, activations_every)
    except Exception as error:  # no C++ compiler, an unsupported platform
        pytest.skip(
            f"torch.compile(backend={backend!r}) failed here: {type(error).__name__}: {error}"
        )
    finally:
        torch._dynamo.reset()
    seconds = time.perf_counter() - start
    print(f"torch.compile backend={backend}: {STEPS} watched steps in {seconds:.1f} s")
    for stat in stats:
        got, want = compiled.table(stat), eager.table(stat)
        assert list(got.index) == list(want.index) and list(got.columns) == list(want.columns)
        np.testing.assert_allclose(
            got.to_numpy(), want.to_numpy(), rtol=rtol, atol=1e-7, err_msg=stat
        )
