"""ClaimSpec: a claim's sentence and rule are formatted from its thresholds, once."""

import pytest

from gradsight.lab.claims import ClaimSpec, bootstrap_label, mean_interval
from gradsight.stats import bootstrap_ci, t_interval

LIMIT = 0.5
SPEC = ClaimSpec(
    "{what}-below",
    "The {what} is below {limit:g}.",
    rule="every seed < {limit:g}",
    central=True,
    control="varied: the {what}; fixed: the net",
    second_look="No confound found; the smallest {what} is {smallest:.2f}.",
)


def test_judge_fills_the_templates_and_ends_the_verdict_with_the_rule():
    factor = 0.4
    claim = SPEC.judge(
        factor < LIMIT, {"factor": 0.4}, "factor 0.4", what="factor", limit=LIMIT, smallest=0.4
    )
    assert claim.name == "factor-below"
    assert claim.statement == "The factor is below 0.5."
    assert claim.verdict == "factor 0.4; held if every seed < 0.5."
    assert claim.held is True and claim.central
    assert claim.to_dict()["name"] == "factor-below"
    assert not SPEC.judge(False, {}, "x", central=False, what="a", limit=LIMIT, smallest=0).central


def test_control_always_and_second_look_only_when_not_held():
    held = SPEC.judge(True, {}, "x", what="factor", limit=LIMIT, smallest=0.4)
    failed = SPEC.judge(False, {}, "x", what="factor", limit=LIMIT, smallest=0.61)
    assert held.control == failed.control == "varied: the factor; fixed: the net"
    assert held.second_look == ""
    assert failed.second_look == "No confound found; the smallest factor is 0.61."
    assert failed.to_dict()["second_look"] == failed.second_look


def test_the_second_look_is_filled_even_when_the_claim_holds():
    # A field it names but the check forgot fails every run, not only those that fail.
    with pytest.raises(KeyError, match="smallest"):
        SPEC.judge(True, {}, "x", what="factor", limit=LIMIT)


def test_a_missing_field_is_an_error_not_a_blank():
    with pytest.raises(KeyError, match="limit"):
        SPEC.judge(True, {}, "x", what="factor", smallest=0.4)


def test_mean_interval_names_its_method():
    values = [1.0, 2.0, 4.0]
    assert mean_interval(values, "t") == ("95% t-interval", t_interval(values))
    label, interval = mean_interval(values, "bootstrap")
    assert interval == bootstrap_ci(values)
    assert label == "95% percentile bootstrap (the range of 3 seeds)"
    assert bootstrap_label(5) == "95% percentile bootstrap over 5 seeds"
    with pytest.raises(ValueError, match="method"):
        mean_interval(values, "bca")
