import re

import pytest
from markupsafe import escape

from gradsight.diagnosis import Finding, Remedy
from gradsight.report import FIGURES, render_figures, report
from gradsight.telemetry import History, read_run

EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"

FINDINGS = [
    Finding(
        "loss_plateau",
        "warning",
        "The loss is stuck at 2.30.",
        "The gradient is small in every direction.",
        evidence={"loss_end": 2.3},
        remedies=(Remedy("momentum"),),
    ),
    Finding(
        "vanishing_gradients",
        "critical",
        "Gradient norm falls by 1.8e4 from fc6 to fc1.",
        "sigmoid' <= 1/4, so the product shrinks with depth.",
        layers=("fc1", "fc2"),
        steps=tuple(range(30)),
        evidence={"ratio": 1.8e4, "per_layer": [1e-4, 1e-3, 0.1]},
        remedies=(Remedy("relu_activation", "derivative 1 when active"), Remedy("he_init")),
    ),
]


@pytest.fixture(scope="module")
def page(mlp_run, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.html"
    out = report(History.load(mlp_run), FINDINGS, path, run_info=read_run(mlp_run))
    assert out == path
    return path.read_text()


def test_every_present_figure_is_inline(page, mlp_run):
    rendered = render_figures(History.load(mlp_run))
    assert len(rendered) == 6
    images = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+"', page)
    assert len(images) == len(rendered)
    for figure in rendered:
        assert f'id="figure-{figure.spec.name}"' in page
        assert str(escape(figure.spec.caption)) in page


def test_no_external_reference(page):
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", page, re.IGNORECASE)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page
    assert "<link" not in page


def test_findings_come_first_most_severe_first(page):
    critical = page.index("vanishing gradients")
    assert (
        critical < page.index("loss plateau") < page.index('id="run"') < page.index('id="figures"')
    )
    for text in (
        "Gradient norm falls by 1.8e4 from fc6 to fc1.",
        "sigmoid&#39; &lt;= 1/4",  # escaped, as every finding text
        "relu_activation",
        "Replace sigmoid/tanh by ReLU",  # the remedy's description
        "derivative 1 when active",  # and its reason
        "Steps: 0–29",
        '<span class="badge critical">critical</span>',
        "1 critical",
    ):
        assert text in page


def test_run_info_is_shown(page):
    for text in ("status", "finished", "task.name", "digits", "torch", "test_accuracy"):
        assert text in page


def test_user_strings_are_escaped(tmp_path):
    history = History()
    for step in range(3):
        history.log(step, "loss", 1.0 / (step + 1))
        history.log(step, "grad/norm", 0.1, EVIL)
    finding = Finding(
        "vanishing_gradients",
        "critical",
        f"layer {EVIL} is dead",
        layers=(EVIL,),
        evidence={EVIL: EVIL},
    )
    path = report(
        history,
        [finding],
        tmp_path / "r.html",
        title=EVIL,
        run_info={"status": "finished", "config": {"name": EVIL, "model": {EVIL: EVIL}}},
    )
    page = path.read_text()
    assert EVIL not in page
    assert "<script" not in page
    assert page.count(ESCAPED) >= 6
    assert f"<title>{ESCAPED}</title>" in page


def test_killed_run_is_flagged_and_no_findings_says_so(mlp_run, tmp_path):
    info = read_run(mlp_run) | {"status": "running"}
    page = report(History.load(mlp_run), [], tmp_path / "r.html", run_info=info).read_text()
    assert "The run did not finish" in page
    assert "No problem found" in page


def test_figures_dir_and_without_run_info(mlp_run, tmp_path):
    report(History.load(mlp_run), [], tmp_path / "r.html", figures_dir=tmp_path / "figures")
    assert sorted(p.stem for p in (tmp_path / "figures").glob("*.png")) == sorted(
        s.name for s in FIGURES[:6]
    )
    page = (tmp_path / "r.html").read_text()
    assert 'id="run"' not in page
    assert "<title>gradsight report</title>" in page
