"""`gradsight demo`: the failing and the healthy example on digits, side by side."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from rich.console import Console

from gradsight.config import load_config, prepare
from gradsight.console import print_findings, print_results
from gradsight.diagnosis import diagnose, save_findings
from gradsight.train import FitResult, fit

FAILING = "digits_sigmoid_deep"
HEALTHY = "digits_relu_he_adam"


def example_config(name: str) -> Path:
    """Path of a config shipped in `gradsight/examples/` (the repository's `examples/`)."""
    path = Path(str(resources.files("gradsight") / "examples" / f"{name}.toml"))
    if not path.is_file():
        raise FileNotFoundError(f"no example config {name!r} in {path.parent}")
    return path


def run_demo(console: Console, run_dir: Path) -> dict[str, FitResult]:
    """Train both examples into `run_dir/<name>` (replacing an earlier demo's runs)."""
    results = {}
    for name in (FAILING, HEALTHY):
        prepared = prepare(load_config(example_config(name)))
        target = run_dir / name
        if (target / "run.json").exists():  # an earlier demo run: replace it
            shutil.rmtree(target)
        console.print(f"[bold]{name}[/]: {prepared.config.get('description', '')}")
        results[name] = fit(
            prepared.model,
            prepared.task,
            run_dir=target,
            progress=True,
            config=prepared.config,
            **prepared.fit_args,
        )
    print_results(console, results)
    failing, healthy = (results[n].metrics["test_accuracy"] for n in (FAILING, HEALTHY))
    console.print(
        f"The deep sigmoid MLP reaches {failing:.1%} test accuracy where the ReLU MLP reaches "
        f"{healthy:.1%}. gradsight's diagnosis of the failing run:"
    )
    for name, result in results.items():
        findings = diagnose(result.history)
        save_findings(findings, result.run_dir / "findings.json")
        if name == FAILING:
            print_findings(console, findings)
        else:
            console.print(f"and of the healthy run: {len(findings)} findings.")
    console.print(f"Runs, with their findings.json, are in {run_dir}/.")
    return results
