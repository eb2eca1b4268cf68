import warnings

import pytest

from gradsight.doctor.scenarios import SCENARIOS

NAMES = list(SCENARIOS)


def test_at_least_twelve_scenarios_with_both_kinds():
    assert len(SCENARIOS) >= 12
    assert sum(s.healthy for s in SCENARIOS.values()) >= 3
    assert sum(not s.healthy for s in SCENARIOS.values()) >= 9


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_each_scenario_gets_its_diagnosis(name):
    scenario = SCENARIOS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the NaN scenarios warn by design
        run = scenario.run()
    found = {f.kind: f.severity for f in run.findings}
    if scenario.healthy:
        assert run.kinds == set(), f"healthy run got {found}"
    else:
        missing = set(scenario.expected) - run.kinds
        assert not missing, f"missing {missing}; got {found}"
    for finding in run.findings:  # every finding is actionable and carries its numbers
        assert finding.summary and finding.explanation and finding.remedies
        assert finding.evidence
