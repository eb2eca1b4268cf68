import pytest
from rich.console import Console

from gradsight.cli.demo import FAILING, HEALTHY, run_demo
from gradsight.diagnosis import load_findings
from gradsight.telemetry import RunDir, read_run


@pytest.mark.slow
def test_demo_shows_the_failing_and_the_healthy_net(tmp_path):
    RunDir(tmp_path / FAILING, {"earlier": "demo"})  # an earlier demo's run is replaced
    console = Console(record=True, width=120)
    results = run_demo(console, tmp_path)
    failing = results[FAILING].metrics["test_accuracy"]
    healthy = results[HEALTHY].metrics["test_accuracy"]
    assert failing < 0.3 and healthy > 0.9
    text = console.export_text()
    assert FAILING in text and HEALTHY in text
    assert f"{failing:.1%} test accuracy" in text
    assert "CRITICAL vanishing_gradients" in text
    assert "Best remedy: " in text and "remedy trials" in text
    assert (tmp_path / FAILING / "report.html").is_file()
    for name in (FAILING, HEALTHY):
        assert read_run(tmp_path / name)["status"] == "finished"
    assert "earlier" not in read_run(tmp_path / FAILING)["config"]
    assert load_findings(tmp_path / HEALTHY / "findings.json") == []
    kinds = {f.kind for f in load_findings(tmp_path / FAILING / "findings.json")}
    assert "vanishing_gradients" in kinds
