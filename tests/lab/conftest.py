import pytest

from gradsight.lab import ExperimentResult, LabConfig, run_all, run_experiment

# Cheap experiments for the tests of the whole-lab outputs (the index, the README table);
# sigmoid-product has a claim that does not hold, so its row carries a second look.
SMALL_LAB = ["sigmoid-product", "adam-bias-correction"]


class QuickLab(dict):
    """Experiments in quick mode, each run on its first use and kept for the test process.

    A test takes the experiment it reads as its `name` parameter: tests/conftest.py groups
    the tests of one experiment into one pytest-xdist worker, so that each experiment runs
    once and the experiments spread over the workers.
    """

    def __init__(self, config: LabConfig) -> None:
        super().__init__()
        self.config = config

    def __missing__(self, name: str) -> ExperimentResult:
        self[name] = run_experiment(name, self.config)
        return self[name]


@pytest.fixture(scope="session")
def quick_lab(tmp_path_factory) -> QuickLab:
    """Each experiment in quick mode, run once for the session when a test first reads it."""
    return QuickLab(LabConfig(quick=True, out_dir=tmp_path_factory.mktemp("lab")))


@pytest.fixture(scope="session")
def small_lab(tmp_path_factory):
    """`lab run` of SMALL_LAB in quick mode: (config, results by name)."""
    config = LabConfig(quick=True, out_dir=tmp_path_factory.mktemp("small_lab"))
    return config, run_all(config, SMALL_LAB)
