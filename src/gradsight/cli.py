"""The `gradsight` command line (typer)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gradsight._version import __version__
from gradsight.config import ConfigError, load_config, prepare

app = typer.Typer(
    help="gradsight: find out why a neural network is not learning, and prove the fix.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()

# Exit status for bad input (configs, arguments), as click uses for usage errors.
BAD_INPUT = 2
INTERRUPTED = 130


def fail(message: str) -> typer.Exit:
    """Print one line to stderr and return the exit for bad input (raise it)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(BAD_INPUT)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gradsight {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """gradsight: find out why a neural network is not learning, and prove the fix."""


@app.command(epilog="Example: gradsight train examples/digits_sigmoid_deep.toml --set train.lr=0.5")
def train(
    config: Annotated[Path, typer.Argument(help="TOML config with [task], [model], [train].")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a value, e.g. --set train.lr=0.01 (repeatable)."),
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option("--run-dir", help="Where to write the run (default runs/NAME-TIMESTAMP)."),
    ] = None,
) -> None:
    """Train a model from a config and write a run directory (run.json, metrics)."""
    from gradsight.console import print_results
    from gradsight.train import fit

    try:
        prepared = prepare(load_config(config, set_ or []))
    except ConfigError as error:
        raise fail(str(error)) from None
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = run_dir or Path("runs") / f"{prepared.name}-{stamp}"
    if (run_dir / "run.json").exists():
        raise fail(f"--run-dir {run_dir} already holds a run; choose another")
    console.print(f"[bold]{prepared.name}[/]: {prepared.task!r}")
    try:
        result = fit(
            prepared.model,
            prepared.task,
            run_dir=run_dir,
            progress=True,
            config=prepared.config,
            **prepared.fit_args,
        )
    except ValueError as error:
        raise fail(f"train: {error}") from None
    except KeyboardInterrupt:
        typer.echo(f"interrupted; what was logged is kept in {run_dir}", err=True)
        raise typer.Exit(INTERRUPTED) from None
    print_results(console, {prepared.name: result})
    console.print(f"run directory: {result.run_dir}")


@app.command(epilog="Example: gradsight demo --run-dir runs/demo")
def demo(
    run_dir: Annotated[Path, typer.Option("--run-dir", help="Where the runs go.")] = Path(
        "runs/demo"
    ),
) -> None:
    """Train a deep sigmoid MLP that fails and a ReLU MLP that learns, side by side."""
    from gradsight.demo import run_demo

    run_demo(console, run_dir)


def main() -> None:
    """Console-script entry point."""
    app()
