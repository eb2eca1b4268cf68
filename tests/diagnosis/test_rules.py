import math
from pathlib import Path

import pytest

import gradsight as gs
from gradsight.diagnosis import FINDING_KINDS, REMEDIES, Finding, Remedy, diagnose
from gradsight.diagnosis import thresholds as th
from gradsight.diagnosis.finding import load_findings, save_findings
from gradsight.telemetry import History


def history_with(rows):
    history = History()
    history.extend(rows)
    return history


def losses(values):
    return [(step, "loss", "", v) for step, v in enumerate(values)]


def test_saddle_point_needs_small_gradient_and_negative_curvature():
    rows = losses([1.0] * 30)
    rows += [(s, "grad/norm_global", "", 1.0 if s < 10 else 1e-4) for s in range(30)]
    rows += [(20, "curv/lambda_max", "", 5.0), (20, "curv/lambda_min", "", -1.0)]
    found = [f for f in diagnose(history_with(rows)) if f.kind == "saddle_point"]
    assert len(found) == 1 and found[0].steps == (20,)
    assert found[0].evidence["lambda_min"] == -1.0
    rows[-1] = (20, "curv/lambda_min", "", 0.01)  # positive curvature: a minimum, not a saddle
    assert not [f for f in diagnose(history_with(rows)) if f.kind == "saddle_point"]


def test_non_finite_names_the_module_and_parameter():
    rows = losses([1.0, 0.9, math.nan])
    rows += [(2, "nonfinite/module", "fc3", 1.0), (2, "nonfinite/grad", "fc1.weight", 1.0)]
    finding = diagnose(history_with(rows))[0]
    assert finding.kind == "non_finite" and finding.severity == "critical"
    assert "fc3" in finding.summary and "fc1.weight" in finding.summary
    assert finding.steps == (2,)


def test_covariate_shift_is_information_only():
    rows = losses([1.0 - 0.01 * s for s in range(40)])
    rows += [(s, "act/drift", "fc1", 2.0) for s in range(0, 40, 5)]
    finding = next(f for f in diagnose(history_with(rows)) if f.kind == "covariate_shift")
    assert finding.severity == "info" and finding.layers == ("fc1",)


def test_learning_rate_too_high_on_a_rising_loss():
    finding = diagnose(history_with(losses([1.0 + 0.1 * s for s in range(50)])))[0]
    assert finding.kind == "learning_rate_too_high"
    assert "rose from" in finding.summary


def test_a_steadily_falling_loss_gets_no_finding():
    assert diagnose(history_with(losses([1.0 / (1 + s) for s in range(100)]))) == []


def test_input_rule_reads_the_task():
    raw = gs.data.load("digits", standardize=False)
    standardized = gs.data.load("digits")
    history = history_with(losses([1.0 / (1 + s) for s in range(30)]))
    assert [f.kind for f in diagnose(history, task=raw)] == ["non_zero_centered"]
    assert diagnose(history, task=standardized) == []


def test_findings_are_most_severe_first():
    rows = losses([1.0 + 0.1 * s for s in range(50)])
    rows += [(s, "act/drift", "fc1", 2.0) for s in range(0, 50, 5)]
    severities = [f.severity for f in diagnose(history_with(rows))]
    assert severities == sorted(severities, key=["critical", "warning", "info"].index)


def test_finding_round_trips_through_json(tmp_path):
    finding = Finding(
        "dead_units",
        "warning",
        "half dead",
        layers=("act1",),
        steps=(3,),
        evidence={"dead": 0.5},
        remedies=(Remedy("he_init", "why"),),
    )
    save_findings([finding], tmp_path / "findings.json")
    assert load_findings(tmp_path / "findings.json") == [finding]


def test_vocabulary_is_enforced():
    with pytest.raises(ValueError, match="unknown finding kind"):
        Finding("slow", "warning", "x")
    with pytest.raises(ValueError, match="unknown remedy"):
        Remedy("more_data")
    with pytest.raises(ValueError, match="severity"):
        Finding("dead_units", "fatal", "x")
    assert len(FINDING_KINDS) == 14 and len(REMEDIES) == 20


def test_every_threshold_has_its_reason():
    text = Path(th.__file__).read_text().splitlines()
    constants = [i for i, line in enumerate(text) if line[:1].isupper() and " = " in line]
    assert constants
    for index in constants:  # a comment block stands above each group of constants
        above = text[max(0, index - 6) : index]
        assert any(line.startswith("#") for line in above), text[index]


def test_lr_times_lambda_max_above_two_is_evidence_of_a_too_high_rate():
    rows = losses([1.0 / (1 + s) for s in range(40)])
    rows += [(s, "lr", "", 0.5) for s in range(40)]
    rows += [(10, "curv/lambda_max", "", 5.0)]  # 0.5 * 5 = 2.5 > 2
    finding = next(f for f in diagnose(history_with(rows)) if f.kind == "learning_rate_too_high")
    assert finding.evidence["max_lr_times_lambda_max"] == 2.5
    rows[-1] = (10, "curv/lambda_max", "", 3.0)  # 1.5 < 2: stable
    assert not [f for f in diagnose(history_with(rows)) if f.kind == "learning_rate_too_high"]


def test_update_ratios_of_near_zero_weights_are_not_read_as_a_high_rate():
    rows = losses([1.0 / (1 + s) for s in range(40)])
    rows += [(s, "update/ratio", "fc1", 0.5) for s in range(0, 40, 5)]
    rows += [(s, "weight/norm", "fc1", 1e-4) for s in range(0, 40, 5)]
    assert not [f for f in diagnose(history_with(rows)) if f.kind == "learning_rate_too_high"]
    rows += [(s, "weight/norm", "fc1", 3.0) for s in range(0, 40, 5)]  # now a real layer
    history = history_with([r for r in rows if not (r[1] == "weight/norm" and r[3] == 1e-4)])
    assert [f.kind for f in diagnose(history)] == ["learning_rate_too_high"]
