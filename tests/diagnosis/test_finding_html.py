"""Findings in a notebook: a short repr, a card per finding (escaped), and `Findings`, the list
`diagnose` returns."""

from __future__ import annotations

import re
from html import unescape

import pytest

from gradsight.diagnosis import Finding, Findings, Remedy, diagnose, load_findings, save_findings
from gradsight.telemetry import History

EVIL = "<script>alert(1)</script>"


@pytest.fixture
def finding() -> Finding:
    return Finding(
        kind="vanishing_gradients",
        severity="critical",
        summary=f"The gradient falls by 1.3e+03 from {EVIL} to fc1.",
        explanation="sigmoid' <= 1/4, so the product shrinks with depth.",
        layers=("fc1", EVIL, "fc3", "fc4"),
        steps=(3, 4, 5, 6),
        evidence={
            "first_last_ratio": 0.000779549,
            "first_layer": EVIL,
            EVIL: [1.5, 2.0],
            "per_layer": {"fc1": 1e-5},
        },
        remedies=(Remedy("relu_activation", f"because {EVIL}"), Remedy("he_init")),
    )


def _text(html: str) -> str:
    """What a reader sees: inline tags dropped, block tags as spaces, entities decoded."""
    inline = re.sub(r"</?(code|strong|em|span)\b[^>]*>", "", html)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", inline)).split())


def test_repr_is_short_and_names_kind_severity_and_layers(finding) -> None:
    assert repr(finding) == (
        "Finding(vanishing_gradients, critical, layers=[fc1, <script>alert(1)</script>, fc3, "
        "… (4 in all)]: The gradient falls by 1.3e+03 from <script>alert(1)</script> to fc1.)"
    )
    long = Finding("loss_plateau", "info", "x" * 300)
    assert repr(long) == f"Finding(loss_plateau, info: {'x' * 99}…)"


def test_card_shows_everything_the_report_does(finding) -> None:
    text = _text(finding._repr_html_())
    for shown in (
        "criticalvanishing gradients vanishing_gradients",
        finding.summary,
        f"Layers: fc1, {EVIL}, fc3, fc4 · Steps: 3–6",
        finding.explanation,
        "first_last_ratio 0.0007795",
        f"first_layer {EVIL}",
        f"{EVIL} 1.5, 2",
        "per_layer fc1: 1e-05",
        f"Remedies, best first relu_activation: {Remedy('relu_activation').description} "
        f"because {EVIL} he_init: {Remedy('he_init').description}",
    ):
        assert shown in text, shown


def test_card_escapes_every_text(finding) -> None:
    html = finding._repr_html_()
    assert "<script" not in html
    assert html.count("&lt;script&gt;") == 5  # summary, layers, evidence key, reason, and value


def test_compact_card_has_the_summary_only(finding) -> None:
    from gradsight.diagnosis.finding_html import finding_html

    text = _text(finding_html(finding, compact=True))
    assert text == f"criticalvanishing gradients vanishing_gradients {finding.summary}"


def test_findings_is_a_list_shown_as_cards_in_order(finding) -> None:
    info = Finding("non_zero_centered", "info", "Mean activation 0.5.")
    findings = Findings([finding, info])
    assert isinstance(findings, list) and findings == [finding, info]
    html = findings._repr_html_()
    assert _text(html).startswith("2 findings: 1 critical, 1 info")
    assert html.index("vanishing_gradients") < html.index("non_zero_centered")
    assert html.count("border-left:6px solid") == 2


def test_no_finding_says_no_problem_found() -> None:
    assert _text(Findings()._repr_html_()).startswith("No problem found")


def test_diagnose_and_load_return_findings(finding, tmp_path) -> None:
    history = History()
    for step in range(20):
        history.log(step, "loss", 1.0 / (step + 1))
    result = diagnose(history)
    assert type(result) is Findings
    assert result == sorted(result, key=lambda f: f.severity != "critical")
    loaded = load_findings(save_findings([finding], tmp_path / "findings.json"))
    assert type(loaded) is Findings and loaded == [finding]
