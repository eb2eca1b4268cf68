import pytest

from gradsight.doctor import doctor
from gradsight.doctor.patients import patient


class ScenarioPrescriptions(dict):
    """The doctor's prescription for each diagnosis scenario, as a user runs it (its own
    settings, the doctor's defaults), computed on first use and kept for the test process.

    A test takes the scenario it reads as its `name` parameter (see tests/conftest.py).
    """

    def __missing__(self, name: str):
        self[name] = doctor(**patient(name))
        return self[name]


@pytest.fixture(scope="session")
def scenario_prescriptions() -> ScenarioPrescriptions:
    return ScenarioPrescriptions()
