"""Fixtures shared across test folders."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Property-based tests: "ci" (the default) is bounded and reproducible; `pytest
# --hypothesis-profile nightly` searches longer, from a fresh seed each time.
settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "nightly",
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("ci")

# A watched training loop that runs until killed, printing every flushed step (every 10).
ENDLESS_TRAINING = textwrap.dedent(
    """
    import json, sys, torch
    import gradsight as gs

    model = gs.models.mlp(8, 2, depth=3, width=16, activation=sys.argv[2], seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(32, 8), torch.randint(0, 2, (32,))
    options = json.loads(sys.argv[3])
    with gs.watch(model, optimizer, run_dir=sys.argv[1], flush_every=10, **options) as watch:
        step = 0
        while True:  # until killed
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad(); loss.backward(); optimizer.step()
            watch.log(loss=loss)
            step += 1
            if step % 10 == 0:
                print(step, flush=True)
    """
)


def kill_training(run_dir: Path, after_step: int, activation: str = "relu", **options) -> int:
    """Train in a subprocess into `run_dir`, SIGKILL it once `after_step` steps are flushed.

    Returns:
        The child's return code (-SIGKILL).
    """
    child = subprocess.Popen(
        [sys.executable, "-c", ENDLESS_TRAINING, str(run_dir), activation, json.dumps(options)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for line in child.stdout:
            if int(line) >= after_step:
                break
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    return child.returncode


@pytest.fixture(scope="session")
def killed_training():
    """`kill_training(run_dir, after_step, activation="relu", **watch_options)`."""
    return kill_training


@pytest.fixture(scope="session")
def local_ray():
    """A local Ray instance on 2 CPUs (extra `[ray]`) for the session's Ray tests."""
    ray = pytest.importorskip("ray")
    from gradsight.executor import connect_ray

    connect_ray(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def one_thread():
    """One torch thread: tiny nets on a busy machine wait on each other's threads far longer
    than they compute."""
    from gradsight.executor import torch_threads

    with torch_threads(1):
        yield


def _history_rows(path: Path) -> dict:
    """A History saved as `frame.to_json()` -> {(step, name, layer): value}."""
    frame = json.loads(path.read_text())
    keys = zip(frame["step"].values(), frame["name"].values(), frame["layer"].values(), strict=True)
    return dict(zip(keys, frame["value"].values(), strict=True))


@pytest.fixture
def rows():
    """Reads a History saved as JSON by one rank of the multi-process tests."""
    return _history_rows


# Under pytest-xdist (`make test` runs two workers), the tests sharing an expensive session
# fixture run in one worker, so that it is built once: the local Ray instance, the small lab
# run.
SHARED_FIXTURE_GROUPS = {"local_ray": "ray", "small_lab": "small_lab"}
# Session fixtures that compute one thing per `name` parameter on first use (an experiment, a
# doctor's scenario): the tests of one name share a worker, and the names spread over both.
PER_NAME_FIXTURES = ("quick_lab", "scenario_prescriptions")


def xdist_group(item) -> str | None:
    """The pytest-xdist group of a test, or None."""
    names = getattr(item, "fixturenames", ())
    for fixture in PER_NAME_FIXTURES:
        if fixture in names:
            params = getattr(item, "callspec", None)
            if params is None or "name" not in params.params:
                raise pytest.UsageError(f"{item.nodeid}: a {fixture} test takes its case as `name`")
            return f"{fixture}-{params.params['name']}"
    return next((group for f, group in SHARED_FIXTURE_GROUPS.items() if f in names), None)


@pytest.hookimpl(wrapper=True)  # around xdist's own hook, which reads the groups
def pytest_collection_modifyitems(config, items):
    # Files with a slow test first (in their order): the workers then finish on short tests
    # together, rather than one running a long test alone at the end.
    heavy = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in heavy)
    for item in items:
        group = xdist_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    return (yield)
