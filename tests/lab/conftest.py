import pytest

from gradsight.lab import LabConfig, run_all


@pytest.fixture(scope="session")
def quick_lab(tmp_path_factory):
    """Every experiment in quick mode, run once for the session: (config, results)."""
    config = LabConfig(quick=True, out_dir=tmp_path_factory.mktemp("lab"))
    return config, run_all(config)
