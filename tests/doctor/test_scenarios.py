"""The doctor on every diagnosis scenario: on a pathological one its
top-ranked remedy measurably improves the test metric (interval above zero); on a healthy
one it says no change is needed."""

from __future__ import annotations

import pytest

from gradsight.doctor.scenarios import SCENARIOS

# As a user runs it: each scenario's own settings and steps, the doctor's defaults (3 seeds,
# remedies "auto"); the file runs in about a minute on 2 cores.
PATHOLOGICAL = [name for name, s in SCENARIOS.items() if not s.healthy]
HEALTHY = [name for name, s in SCENARIOS.items() if s.healthy]


@pytest.mark.slow
@pytest.mark.parametrize("name", PATHOLOGICAL, ids=PATHOLOGICAL)
def test_the_top_remedy_is_proven(scenario_prescriptions, name: str) -> None:
    p = scenario_prescriptions[name]
    assert set(SCENARIOS[name].expected) <= {f.kind for f in p.findings}
    top = p.trials.iloc[0]
    assert p.best == top["remedy"], p.summary()
    assert top["ci_low"] > 0 and top["improvement"] > 0
    assert "Best remedy" in p.summary()


@pytest.mark.slow
@pytest.mark.parametrize("name", HEALTHY, ids=HEALTHY)
def test_a_healthy_run_needs_no_change(scenario_prescriptions, name: str) -> None:
    p = scenario_prescriptions[name]
    assert p.healthy and p.best is None
    assert not (p.trials["ci_low"] > 0).any()  # no remedy was even called for
    assert "no change needed" in p.summary()
