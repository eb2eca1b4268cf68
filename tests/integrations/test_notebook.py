"""gradsight in a Jupyter notebook, executed by nbclient on a real kernel: the progress bar of
`gs.fit`, and the HTML displays of its FitResult, the History, the findings, one Finding and
`gs.report`'s page.

The kernel is this interpreter (an ipykernel spec written to a temporary JUPYTER_PATH), so the
test needs no kernel installed beforehand, only `nbclient`, `nbformat` and `ipykernel`.
"""

from __future__ import annotations

import json
import re
import sys
from html import unescape

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
kernelspec = pytest.importorskip("ipykernel.kernelspec")

pytestmark = pytest.mark.slow  # a kernel, a short training run and a report: about 15 s

KERNEL = "gradsight-test"
# More than one block of fit's progress updates (LOG_BLOCK = 50): the bar is redrawn in place.
STEPS = 60
CELLS = [
    f"""
import json
import gradsight as gs
task = gs.data.load("digits", seed=0)
model = gs.models.mlp(64, 10, depth=6, width=16, activation="sigmoid", seed=0)
result = gs.fit(model, task, optimizer="sgd", lr=0.1, steps={STEPS}, batch_size=64,
                watch=True, progress=True)
result
""",
    "result.history",
    "findings = gs.diagnose(result.history)\nfindings",
    "findings[0]",
    'gs.report(result.history, findings, "report.html")',
    """
print(json.dumps({
    "kinds": [f.kind for f in findings],
    "layers": result.history.layers("grad/norm"),
    "loss": result.history.last("loss"),
    "steps": result.metrics["steps"],
}))
""",
]


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    """The executed notebook and its folder."""
    root = tmp_path_factory.mktemp("notebook")
    kernelspec.write_kernel_spec(root / "jupyter" / "kernels" / KERNEL)
    spec = json.loads((root / "jupyter" / "kernels" / KERNEL / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable  # this interpreter, with gradsight installed
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JUPYTER_PATH", str(root / "jupyter"))
        env.setenv("JUPYTER_RUNTIME_DIR", str(root / "runtime"))
        env.setenv("IPYTHONDIR", str(root / "ipython"))
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
        client = nbclient.NotebookClient(
            nb, timeout=300, kernel_name=KERNEL, resources={"metadata": {"path": str(root)}}
        )
        client.execute()
    return nb, root


@pytest.fixture(scope="module")
def facts(notebook):
    """What the kernel computed, printed by the last cell."""
    nb, _ = notebook
    (out,) = nb.cells[-1].outputs
    return json.loads(out["text"])


def _html(cell, output_type: str = "execute_result") -> str:
    (out,) = [o for o in cell.outputs if o["output_type"] == output_type]
    return out["data"]["text/html"]


def test_fit_draws_its_progress_bar_without_ipywidgets(notebook, facts) -> None:
    nb, _ = notebook
    bar = _html(nb.cells[0], "display_data")  # one display: each redraw replaced it
    text = " ".join(unescape(re.sub(r"<[^>]+>", "", bar)).split())
    # The display was updated in place to the last state: every step, the last loss.
    assert facts["steps"] == STEPS
    assert "training" in text and f"{STEPS}/{STEPS} steps loss {facts['loss']:.4g}" in text
    plain = [o["data"]["text/plain"] for o in nb.cells[0].outputs if "data" in o]
    assert any(f"{STEPS}/{STEPS} steps" in p for p in plain)
    every_output = json.dumps([cell.outputs for cell in nb.cells])
    assert "ipywidgets" not in every_output and "IProgress" not in every_output


def test_fit_result_and_history_show_as_html(notebook, facts) -> None:
    nb, _ = notebook
    for cell in nb.cells[:2]:
        html = _html(cell)
        assert "<strong>History</strong>" in html
        assert re.search(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+"', html)
        for layer in facts["layers"]:
            assert f">{layer}</code>" in html
    assert f"<strong>FitResult</strong>: {STEPS} steps" in _html(nb.cells[0])


def test_findings_and_a_finding_show_as_cards(notebook, facts) -> None:
    nb, _ = notebook
    assert facts["kinds"], "the deep sigmoid net was expected to show findings"
    cards = _html(nb.cells[2])
    assert f"<strong>{len(facts['kinds'])} finding" in cards
    positions = [cards.index(f">{kind}</code>") for kind in facts["kinds"]]
    assert positions == sorted(positions)  # most severe first, as diagnose ordered them
    (out,) = nb.cells[3].outputs
    assert f">{facts['kinds'][0]}</code>" in out["data"]["text/html"]
    assert out["data"]["text/plain"].startswith(f"Finding({facts['kinds'][0]}, ")


def test_report_shows_its_page_inline(notebook) -> None:
    nb, root = notebook
    html = _html(nb.cells[4])
    (srcdoc,) = re.findall(r'<iframe srcdoc="([^"]*)"', html)
    assert unescape(srcdoc) == (root / "report.html").read_text(encoding="utf-8")
