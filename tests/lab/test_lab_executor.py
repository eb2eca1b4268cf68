"""The lab's experiments give the same tables and claims on every executor.

Each trial seeds itself and runs on one torch thread, so local processes and Ray tasks must
reproduce the serial executor's numbers exactly, not within a tolerance.
"""

import pandas as pd
import pytest

from gradsight.executor import Executor
from gradsight.lab import ExperimentResult, LabConfig, get_experiment

# Cheap in quick mode on one seed (a few seconds each, serially): saddle maps one grid (its
# optimizers' runs); learning-rate maps two (the LR range tests, then the fits from their
# valleys).
NAMES = ["saddle", "learning-rate"]
SEEDS = 1
# Every map starts its own pool of spawned processes (a few seconds of imports each), so the
# processes are checked on the experiment with one map; Ray keeps its workers between maps.
ONE_MAP = ["saddle"]


def _run(name: str, executor: Executor, out) -> ExperimentResult:
    config = LabConfig(quick=True, seeds=SEEDS, out_dir=out, executor=executor)
    return get_experiment(name).run(config)


def _assert_same(result: ExperimentResult, expected: ExperimentResult) -> None:
    assert list(result.tables) == list(expected.tables)
    for key, table in expected.tables.items():
        pd.testing.assert_frame_equal(result.tables[key], table, check_exact=True, obj=key)
    # to_dict: held, verdict and every number (NaN as None, so that equal means equal)
    assert [c.to_dict() for c in result.claims] == [c.to_dict() for c in expected.claims]


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """Each experiment of NAMES on the serial executor, run once for the module."""
    out = tmp_path_factory.mktemp("serial")
    return {name: _run(name, Executor(), out) for name in NAMES}


@pytest.mark.slow
@pytest.mark.parametrize("name", ONE_MAP, ids=ONE_MAP)
def test_local_processes_give_the_serial_results(serial, name, tmp_path):
    _assert_same(_run(name, Executor(workers=2), tmp_path), serial[name])


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_ray_gives_the_serial_results(serial, local_ray, name, tmp_path):
    _assert_same(_run(name, Executor("ray"), tmp_path), serial[name])
