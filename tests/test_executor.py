"""The executor runs jobs in order, in this process or in others, with identical results."""

from __future__ import annotations

import functools
import os
import socket

import pytest
import torch

from gradsight import data, fit, models
from gradsight.executor import JOB_THREADS, Executor, connect_ray


def _train(seed: int, task) -> float:
    model = models.mlp(task.input_shape[0], task.output_size, width=16, depth=3, seed=seed)
    result = fit(model, task, optimizer="sgd", lr=0.1, steps=30, seed=seed, watch=False)
    return result.metrics["train_loss"]


def _threads(_: int) -> int:
    return torch.get_num_threads()


def _pid(_: int) -> int:
    return os.getpid()


def _fail(item: int) -> int:
    if item == 2:
        raise RuntimeError("job 2 failed")
    return item


def test_local_processes_give_the_results_of_this_process_in_order():
    task = data.load("spirals", n_train=200)
    job = functools.partial(_train, task=task)
    here = Executor().map(job, range(3))
    there = Executor(workers=2).map(job, range(3))
    assert here == there
    assert len(set(here)) == 3  # the seeds matter, so the order is checked


def test_worker_processes_are_kept_between_maps():
    first = Executor(workers=2).map(_pid, range(4))
    second = Executor(workers=2).map(_pid, range(4))
    assert os.getpid() not in first
    assert len(set(first) | set(second)) <= 2  # a new pool would bring new processes


def test_every_job_runs_on_one_thread_and_the_caller_keeps_its_own():
    before = torch.get_num_threads()
    assert Executor().map(_threads, [0]) == [JOB_THREADS]
    assert torch.get_num_threads() == before


def test_done_is_called_once_per_job():
    calls = []
    assert Executor().map(str, [1, 2, 3], done=lambda: calls.append(1)) == ["1", "2", "3"]
    assert len(calls) == 3


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_job_raises_its_error(workers):
    with pytest.raises(RuntimeError, match="job 2 failed"):
        Executor(workers=workers).map(_fail, range(4))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "dask"}, "unknown executor"),
        ({"workers": 0}, "workers must be"),
        ({"address": "auto"}, "ray executor only"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Executor(**kwargs)


@pytest.mark.slow
def test_ray_gives_the_results_of_the_local_executor(local_ray):
    task = data.load("spirals", n_train=200)
    job = functools.partial(_train, task=task)
    done = []
    assert Executor("ray").map(job, range(3), done=lambda: done.append(1)) == Executor().map(
        job, range(3)
    )
    assert len(done) == 3


@pytest.mark.slow
def test_ray_raises_a_failing_jobs_error(local_ray):
    with pytest.raises(RuntimeError, match="job 2 failed"):
        Executor("ray").map(_fail, range(4))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("address", ["127.0.0.1:{port}", "no-port", "host:abc"])
def test_a_ray_address_where_nothing_answers_fails_at_once(address):
    pytest.importorskip("ray")
    with pytest.raises(ConnectionError, match=r"nothing answers|looks like HOST:PORT"):
        connect_ray(address.format(port=_free_port()))
