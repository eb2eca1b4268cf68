import pytest

import gradsight as gs
from gradsight.telemetry import History

WATCH = {"activations_every": 5, "histograms": True}


@pytest.fixture(scope="session")
def mlp_run(tmp_path_factory):
    """A small deep sigmoid MLP on digits: every MLP figure has its metrics."""
    run_dir = tmp_path_factory.mktemp("mlp") / "run"
    model = gs.models.mlp(64, 10, depth=6, width=32, activation="sigmoid", seed=0)
    gs.fit(model, gs.data.load("digits"), steps=30, eval_every=15, run_dir=run_dir, watch=WATCH)
    return run_dir


@pytest.fixture(scope="session")
def rnn_run(tmp_path_factory):
    """A vanilla RNN on the adding problem: hidden-state taps for the temporal figure."""
    run_dir = tmp_path_factory.mktemp("rnn") / "run"
    task = gs.data.load("adding", length=10, n_train=200, n_test=50)
    gs.fit(
        gs.models.rnn(2, 16, 1, cell="rnn", seed=0),
        task,
        steps=20,
        run_dir=run_dir,
        watch={"activations_every": 5},
    )
    return run_dir


@pytest.fixture
def synthetic():
    """An in-memory History with curvature and ReLU statistics, which gs.fit does not log."""
    history = History()
    for step in range(10):
        history.log(step, "loss", 2.0 / (step + 1))
        history.log(step, "curv/lambda_max", 10.0 - step)
        history.log(step, "curv/lambda_min", -1.0 + 0.1 * step)
        for layer in ("fc1", "act1", "fc2"):
            history.log(step, "act/dead", 0.1 * step / 10, layer)
            history.log(step, "grad/norm", 10.0 ** -(3 - step / 10), layer)
    return history


@pytest.fixture
def loss_only():
    history = History()
    for step in range(5):
        history.log(step, "loss", 1.0)
    return history
