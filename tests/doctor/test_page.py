"""The doctor's page (doctor.html), its record (prescription.json), its figure, and its section
in the report."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

import gradsight as gs
from gradsight.doctor import page
from gradsight.doctor.figure import improvement_figure
from gradsight.report import Section

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def task() -> gs.Task:
    return gs.data.load("digits", seed=0)


def deep_sigmoid(seed: int):
    return gs.models.mlp(64, 10, depth=6, width=32, activation="sigmoid", seed=seed)


@pytest.fixture(scope="module")
def prescription(task):
    return gs.doctor(
        deep_sigmoid, task, lr=0.1, steps=30, seeds=2, remedies=["relu_activation", "momentum"]
    )


def _refuse(constant: str):
    raise ValueError(f"not strict JSON: {constant}")


def test_page_is_self_contained_and_complete(prescription, tmp_path) -> None:
    path = page.write(prescription, tmp_path / "run", title="deep sigmoid", source="a.toml")
    html = path.read_text()
    assert path == tmp_path / "run" / "doctor.html"
    assert "<style>" in html and "data:image/png;base64," in html
    assert not re.search(r"(src|href)=\"(?!data:|#)", html)  # nothing fetched from anywhere
    for text in (
        "deep sigmoid",
        "a.toml",
        "Prescription",
        "Trials",
        "baseline",
        "momentum",
        "relu_activation",
        "nn.Sigmoid by nn.ReLU",
        prescription.findings[0].summary,
    ):
        assert text.replace("'", "&#39;") in html  # fmt: skip


def test_page_escapes_what_it_shows(prescription, tmp_path) -> None:
    evil = "<script>alert(1)</script>"
    changed = dataclasses.replace(prescription, skipped={evil: evil}, changes={evil: (evil,)})
    html = page.write(changed, tmp_path, title=evil, source=evil).read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_record_is_strict_json_with_the_trials(prescription, tmp_path) -> None:
    page.write(prescription, tmp_path, config_diffs={"momentum": ["  [train]", "+ momentum = 0.9"]})
    record = json.loads((tmp_path / "prescription.json").read_text(), parse_constant=_refuse)
    assert record["best"] == prescription.best and record["metric"] == "accuracy"
    assert [t["remedy"] for t in record["trials"]] == list(prescription.trials["remedy"])
    assert set(record["trials"][0]) >= {"train_loss", "test_accuracy", "improvement", "ci_low"}
    assert record["baseline"]["remedy"] == "baseline"
    assert record["settings"]["steps"] == 30 and record["settings"]["lr"] == 0.1
    assert record["changes"]["momentum"] and record["findings"][0]["kind"]
    assert record["config_diff"] == {"momentum": ["  [train]", "+ momentum = 0.9"]}
    assert "config_diff" not in page.record(prescription)


def test_config_diff_stands_in_for_the_code_change(prescription, tmp_path) -> None:
    diffs = {"relu_activation": ["  [model]", '- activation = "sigmoid"', '+ activation = "relu"']}
    best = dataclasses.replace(prescription, best="relu_activation")
    html = page.write(best, tmp_path, config_diffs=diffs).read_text()
    assert '<span class="del">- activation = &#34;sigmoid&#34;</span>' in html
    assert '<span class="add">+ activation = &#34;relu&#34;</span>' in html
    assert "As a change of the config" in html


def test_figure_has_a_bar_per_remedy_and_none_without_trials(prescription) -> None:
    fig = improvement_figure(prescription)
    ax = fig.axes[0]
    assert len(ax.patches) == len(prescription.trials)
    assert [t.get_text() for t in ax.get_yticklabels()][::-1] == list(prescription.trials["remedy"])
    assert any(line.get_xdata()[0] == 0 for line in ax.lines)  # the baseline at 0
    empty = dataclasses.replace(prescription, trials=prescription.trials.iloc[:0])
    assert improvement_figure(empty) is None


def test_report_takes_the_doctor_section(prescription, task, tmp_path) -> None:
    model = deep_sigmoid(0)
    result = gs.fit(model, task, lr=0.1, steps=10, batch_size=32, watch=True)
    findings = gs.diagnose(result.history)
    section = page.section(prescription)
    path = gs.report(result.history, findings, tmp_path / "report.html", sections=[section])
    html = path.read_text()
    assert '<h2 id="doctor">Doctor</h2>' in html and "Trials" in html
    assert html.index('id="doctor"') < html.index('id="figures"')
    plain = gs.report(
        result.history, findings, tmp_path / "plain.html", sections=[Section("Note", "<b>x</b>")]
    ).read_text()
    assert "&lt;b&gt;x&lt;/b&gt;" in plain  # a plain string is text, not HTML
