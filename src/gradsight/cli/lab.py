"""`gradsight lab list | run NAME|all`: the lab's commands, a typer sub-app.

Wired into the main CLI with `app.add_typer(lab_app, name="lab")`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from gradsight.cli.console import make_table, print_table
from gradsight.cli.errors import ErrorBoundary, fail
from gradsight.executor import KINDS, Executor, connect_ray

if TYPE_CHECKING:
    from gradsight.lab.experiment import ExperimentResult

lab_app = typer.Typer(
    cls=ErrorBoundary,
    help="Run the textbook experiments: each claim of the theory, measured, with figures.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()


@lab_app.command("list", epilog="Example: gradsight lab list")
def list_command() -> None:
    """List the experiments and the question each answers."""
    from gradsight.lab.registry import EXPERIMENTS

    table = make_table(["name", "question"], lines=True)
    for experiment in EXPERIMENTS.values():
        table.add_row(f"[bold]{experiment.name}[/]", experiment.question)
    print_table(console, table)


def verdict_table(results: dict[str, ExperimentResult]) -> Table:
    """One row per claim: experiment, held / not held, statement, measured verdict."""
    table = make_table(["experiment", "verdict", "claim", "measured"], lines=True)
    for name, result in results.items():
        for claim in result.claims:
            verdict = "[green]held[/]" if claim.held else "[red]not held[/]"
            table.add_row(name, verdict, claim.statement, claim.verdict)
    return table


@lab_app.command(
    "run",
    epilog=(
        "Example: gradsight lab run vanishing-depth --quick --out lab  "
        "(or: lab run all --workers 2; on a Ray cluster: lab run all --executor ray "
        "--address auto)"
    ),
)
def run_command(
    name: Annotated[str, typer.Argument(help="An experiment name (see `lab list`) or all.")],
    quick: Annotated[
        bool, typer.Option("--quick", help="Small grids, few steps: about a minute each.")
    ] = False,
    seeds: Annotated[
        int | None, typer.Option("--seeds", help="Seeds per configuration (default 2 quick, 5).")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Where NAME/index.html and the figures go.")
    ] = Path("lab"),
    executor: Annotated[
        str,
        typer.Option(
            "--executor",
            help="Where the trials run: local (this machine) or ray (one Ray task each; "
            "extra gradsight\\[ray]). The results are the same.",
        ),
    ] = "local",
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Local processes running trials at once (default 1)."),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="With ray: auto (this machine's cluster) or HOST:PORT (`ray start --head` "
            "prints it); default: start Ray here.",
        ),
    ] = None,
) -> None:
    """Run an experiment (or all), print its claims' verdicts and write its HTML page."""
    from gradsight.lab.experiment import LabConfig
    from gradsight.lab.registry import EXPERIMENTS
    from gradsight.lab.runner import run_all, run_experiment

    if name != "all" and name not in EXPERIMENTS:
        raise fail(f"unknown experiment {name!r}; choose from all, {', '.join(EXPERIMENTS)}")
    if seeds is not None and seeds < 1:
        raise fail(f"--seeds must be >= 1, got {seeds}")
    config = LabConfig(
        quick=quick,
        seeds=seeds,
        out_dir=out,
        progress=True,
        executor=_executor(executor, workers, address),
    )
    if name == "all":
        results = run_all(config)
        page = out / "index.html"
    else:
        results = {name: run_experiment(name, config)}
        page = results[name].page
    print_table(console, verdict_table(results))
    held = sum(c.held for r in results.values() for c in r.claims)
    total = sum(len(r.claims) for r in results.values())
    console.print(f"{held} of {total} claims held", highlight=False)
    typer.echo(f"page: {page}")  # plain and unwrapped, for scripts


def _executor(kind: str, workers: int | None, address: str | None) -> Executor:
    """The checked `Executor` of the options; with ray, Ray started or joined now."""
    if kind not in KINDS:
        raise fail(f"--executor must be one of {', '.join(KINDS)}, got {kind!r}")
    if workers is not None and workers < 1:
        raise fail(f"--workers must be >= 1, got {workers}")
    if kind != "ray" and address is not None:
        raise fail("--address is for --executor ray only")
    if kind == "ray" and workers is not None:
        raise fail("--workers is for --executor local only (Ray runs one trial per CPU)")
    if kind == "ray":
        # Joining now turns a missing Ray or an unreachable cluster into one line here,
        # not a traceback after the first experiment's setup.
        try:
            connect_ray(address)
        except ImportError as error:
            raise fail(str(error)) from None
        except ConnectionError as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise fail(f"cannot join the Ray cluster at {address}: {first}") from None
    return Executor(kind, workers or 1, address)
