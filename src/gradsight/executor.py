"""Run independent jobs (the lab's grid points, the doctor's trials) here, in local
processes, or as Ray tasks, and get their results back in order.

Every job runs on one torch thread whatever the executor, so a job gives bit-identical
results in this process, in a worker process and on a Ray worker: intra-op parallelism
changes the order of float reductions, one thread per job does not. Jobs must seed
themselves (`gs.fit(seed=...)`); a job is a picklable callable (a module-level function or
a `functools.partial` of one) and picklable arguments.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import socket
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from gradsight.errors import InputError, MissingPackageError

T = TypeVar("T")
R = TypeVar("R")

KINDS = ("local", "ray")
# Seconds to wait for a Ray head at HOST:PORT before saying nothing answers there.
CONNECT_TIMEOUT_S = 5.0
# torch threads per job: the nets of the lab and the doctor are too small for intra-op
# parallelism to pay, and one thread makes results independent of where a job runs.
JOB_THREADS = 1


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to `count` for the block (None: left alone)."""
    import torch  # here, not at module level: `gradsight --help` imports this module

    if count is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _call(fn: Callable[[T], R], item: T) -> R:
    """`fn(item)` on JOB_THREADS torch threads."""
    with torch_threads(JOB_THREADS):
        return fn(item)


@dataclass(frozen=True)
class Executor:
    """Where jobs run.

    Attributes:
        kind: "local" (this machine) or "ray" (a Ray cluster, extra `gradsight[ray]`).
        workers: Local processes running jobs at once; 1 runs them in this process, one
            after the other. Ignored by Ray, which schedules one CPU per job.
        address: Ray's cluster address: "auto" (the cluster this machine belongs to),
            "HOST:PORT" (`ray start --head` prints it), or None to start a local instance.
    """

    kind: str = "local"
    workers: int = 1
    address: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"unknown executor {self.kind!r}; choose one of: {', '.join(KINDS)}")
        if not isinstance(self.workers, int) or self.workers < 1:
            raise InputError(f"workers must be an int >= 1, got {self.workers!r}")
        if self.address is not None and self.kind != "ray":
            raise InputError("address is for the ray executor only")

    def map(
        self,
        fn: Callable[[T], R],
        items: Iterable[T],
        done: Callable[[], None] | None = None,
    ) -> list[R]:
        """`[fn(item) for item in items]`, run by this executor.

        Args:
            fn: The job: picklable when it leaves this process.
            items: One job's argument each.
            done: Called once per finished job (a progress bar's advance).

        Returns:
            The results in the order of `items`.

        Raises:
            Whatever a job raised (the first failure; the remaining jobs are cancelled).
        """
        items = list(items)
        done = done or (lambda: None)
        if self.kind == "ray":
            return _ray_map(fn, items, done, self.address)
        if self.workers == 1 or len(items) <= 1:
            results = []
            for item in items:
                results.append(_call(fn, item))
                done()
            return results
        return _process_map(fn, items, done, self.workers)


# Worker processes outlive a map: starting one imports torch and gradsight (seconds), which
# the several maps of a lab experiment or a doctor run would otherwise pay each time.
_POOLS: dict[int, ProcessPoolExecutor] = {}


def _pool(workers: int) -> ProcessPoolExecutor:
    if workers not in _POOLS:
        # spawn, not fork: a forked child inherits torch's thread pools half-initialised.
        context = multiprocessing.get_context("spawn")
        _POOLS[workers] = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    return _POOLS[workers]


@atexit.register
def shutdown_pools() -> None:
    """Stop the worker processes kept between maps (at exit, or to free their memory)."""
    while _POOLS:
        _POOLS.popitem()[1].shutdown(cancel_futures=True)


def _process_map(
    fn: Callable[[T], R], items: Sequence[T], done: Callable[[], None], workers: int
) -> list[R]:
    pool = _pool(workers)
    results: list[Any] = [None] * len(items)
    pending = {pool.submit(_call, fn, item): i for i, item in enumerate(items)}
    try:
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                results[pending.pop(future)] = future.result()
                done()
    except BrokenProcessPool:
        _POOLS.pop(workers, None)  # a worker died (killed, out of memory): start afresh
        raise
    except BaseException:
        for future in pending:
            future.cancel()
        raise
    return results


def connect_ray(address: str | None = None, **options: Any) -> None:
    """Start or join Ray unless this process already has (`ray.init(address, **options)`).

    Args:
        address: None starts a local instance, whose workers get this process's sys.path so
            a user's own modules (`--model pkg.module:build`) import there; "auto" or
            "HOST:PORT" joins a cluster, whose workers keep the cluster's environment.
        options: More `ray.init` arguments (num_cpus=2 in the tests).

    Raises:
        ImportError: If Ray is not installed.
        ConnectionError: If nothing answers at HOST:PORT (checked first: Ray itself keeps
            retrying for minutes).
    """
    try:
        import ray
    except ImportError:
        raise MissingPackageError(
            "the ray executor needs Ray: pip install 'gradsight[ray]'"
        ) from None
    if address is not None and address != "auto" and "://" not in address:
        _check_reachable(address)
    if ray.is_initialized():
        return
    if address is None:
        path = os.pathsep.join(os.path.abspath(p or os.curdir) for p in sys.path)
        options.setdefault("runtime_env", {"env_vars": {"PYTHONPATH": path}})
    options.setdefault("log_to_driver", False)
    ray.init(address=address, **options)


def _check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConnectionError(f"a Ray address looks like HOST:PORT or auto, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise ConnectionError(f"nothing answers at {address} ({error})") from None


def _ray_map(
    fn: Callable[[T], R], items: Sequence[T], done: Callable[[], None], address: str | None
) -> list[R]:
    connect_ray(address)
    import ray

    remote = ray.remote(num_cpus=1)(_call)
    refs = [remote.remote(fn, item) for item in items]
    index = {ref: i for i, ref in enumerate(refs)}
    results: list[Any] = [None] * len(items)
    pending = list(refs)
    try:
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            for ref in finished:
                results[index[ref]] = ray.get(ref)
                done()
    except BaseException:
        for ref in pending:
            ray.cancel(ref)
        raise
    return results


__all__ = ["JOB_THREADS", "KINDS", "Executor", "connect_ray", "shutdown_pools", "torch_threads"]
