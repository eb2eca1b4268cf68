"""`gradsight demo`: the failing and the healthy example on digits side by side, then the
diagnosis, the report and the doctor's prescription for the failing one."""

from __future__ import annotations

import shutil
from pathlib import Path

from rich.console import Console

from gradsight.cli.console import print_results, print_trials
from gradsight.config import load_config, prepare
from gradsight.diagnosis import diagnose, load_findings, save_findings
from gradsight.diagnosis.finding_text import print_findings
from gradsight.doctor import doctor
from gradsight.example_configs import example_config
from gradsight.report import report
from gradsight.run_files import FINDINGS_JSON, REPORT_HTML, RUN_JSON
from gradsight.train import FitResult, fit

FAILING = "digits_sigmoid_deep"
HEALTHY = "digits_relu_he_adam"
DOCTOR_STEPS = 300


def run_demo(console: Console, run_dir: Path) -> dict[str, FitResult]:
    """Train both examples into `run_dir/<name>` (replacing an earlier demo's runs)."""
    results = {}
    for name in (FAILING, HEALTHY):
        prepared = prepare(load_config(Path(str(example_config(name)))))
        target = run_dir / name
        if (target / RUN_JSON).exists():  # an earlier demo run: replace it
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
        save_findings(findings, result.run_dir / FINDINGS_JSON)
        if name == FAILING:
            print_findings(console, findings)
        else:
            console.print(f"and of the healthy run: {len(findings)} findings.")
    failing_run = results[FAILING]
    page = report(
        failing_run.history,
        load_findings(failing_run.run_dir / FINDINGS_JSON),
        failing_run.run_dir / REPORT_HTML,
        title=FAILING,
    )
    console.print(f"Its report: {page}")
    console.print("The doctor tries the remedies on the failing net (2 seeds, 300 steps each):")
    prepared = prepare(load_config(Path(str(example_config(FAILING)))))
    train = prepared.fit_args
    prescription = doctor(
        prepared.model,
        prepared.task,
        optimizer=train["optimizer"],
        lr=train["lr"],
        batch_size=train["batch_size"],
        steps=DOCTOR_STEPS,
        seeds=2,
        progress=True,
    )
    console.print(prescription.summary(table=False), markup=False, highlight=False)
    print_trials(console, prescription)
    console.print(f"Runs, findings and the report are in {run_dir}/.")
    return results
