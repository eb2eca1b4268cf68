from rich.console import Console

from gradsight.demo import FAILING, HEALTHY, run_demo
from gradsight.diagnosis import load_findings
from gradsight.telemetry import read_run


def test_demo_shows_the_failing_and_the_healthy_net(tmp_path):
    console = Console(record=True, width=120)
    results = run_demo(console, tmp_path)
    with open(tmp_path / "again.txt", "w") as quiet:
        run_demo(Console(file=quiet), tmp_path)  # a second demo replaces the first one's runs
    failing = results[FAILING].metrics["test_accuracy"]
    healthy = results[HEALTHY].metrics["test_accuracy"]
    assert failing < 0.3 and healthy > 0.9
    text = console.export_text()
    assert FAILING in text and HEALTHY in text
    assert f"{failing:.1%} test accuracy" in text
    assert "CRITICAL vanishing_gradients" in text
    for name in (FAILING, HEALTHY):
        assert read_run(tmp_path / name)["status"] == "finished"
    assert load_findings(tmp_path / HEALTHY / "findings.json") == []
    kinds = {f.kind for f in load_findings(tmp_path / FAILING / "findings.json")}
    assert "vanishing_gradients" in kinds
