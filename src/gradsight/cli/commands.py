"""The `gradsight` command line (typer)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gradsight._version import __version__
from gradsight.cli.errors import INTERRUPTED, ErrorBoundary, fail, user_error_message
from gradsight.cli.lab import lab_app
from gradsight.errors import InputError
from gradsight.run_files import FINDINGS_JSON, REPORT_HTML, RUN_JSON

# The commands import their implementations (torch, pandas, ...) when they run, so that
# `gradsight --help`, `--version` and shell completion stay fast. User errors (bad input, paths,
# missing packages) become one line and exit 2 in one place: `cli.errors.ErrorBoundary`.
app = typer.Typer(
    cls=ErrorBoundary,
    help="gradsight: find out why a neural network is not learning, and prove the fix.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
console = Console()
app.add_typer(lab_app, name="lab")


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
    # "\\[" keeps rich from reading the table names as markup (and dropping them).
    config: Annotated[Path, typer.Argument(help="TOML config: \\[task], \\[model], \\[train].")],
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
    from gradsight.stop_signals import sigterm_as_interrupt, stops_deferred

    # A Ctrl-C inside torch's import is swallowed there and breaks it: it waits until the
    # imports are done and the config is built, then ends the command as usual (exit 130).
    with stops_deferred():
        from gradsight.cli.console import print_results
        from gradsight.config import load_config, prepare
        from gradsight.telemetry.run_dir import new_run_dir
        from gradsight.train import fit

        prepared = prepare(load_config(config, set_ or []))
    run_dir = run_dir or new_run_dir("runs", prepared.name)
    if (run_dir / RUN_JSON).exists():
        raise fail(f"--run-dir {run_dir} already holds a run; choose another")
    console.print(f"[bold]{prepared.name}[/]: {prepared.task!r}")
    try:
        with sigterm_as_interrupt():  # a `kill` or a scheduler's stop ends it as Ctrl-C does
            result = fit(
                prepared.model,
                prepared.task,
                run_dir=run_dir,
                progress=True,
                config=prepared.config,
                **prepared.fit_args,
            )
    except OSError as error:  # a full disk, an unwritable folder: say what is kept
        message = f"train: {user_error_message(error)}"
        if (run_dir / RUN_JSON).exists():
            message += f"; {run_dir} keeps the steps flushed before"
        raise fail(message) from None
    except KeyboardInterrupt:
        kept = (run_dir / RUN_JSON).exists()
        typer.echo(
            f"interrupted; what was logged is kept in {run_dir}"
            if kept
            else "interrupted before the run directory was made",
            err=True,
        )
        raise typer.Exit(INTERRUPTED) from None
    print_results(console, {prepared.name: result})
    console.print(f"run directory: {result.run_dir}")


@app.command(
    "run",
    # Everything after SCRIPT is the script's, its options included (even --help).
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "allow_interspersed_args": False,
    },
    epilog="Example: gradsight run --run-dir runs/mnist train.py --epochs 2 --lr 0.5",
)
def run_cmd(
    ctx: typer.Context,
    script: Annotated[Path, typer.Argument(help="A training script, then its own arguments.")],
    run_dir: Annotated[
        Path | None,
        typer.Option("--run-dir", help="Where to write the run (default runs/SCRIPT-TIMESTAMP)."),
    ] = None,
    every: Annotated[int, typer.Option("--every", help="Gradient norms every N steps.")] = 1,
    activations_every: Annotated[
        int, typer.Option("--activations-every", help="Activation statistics every N steps.")
    ] = 10,
) -> None:
    """Run a training script unchanged (as `python SCRIPT ARGS`), watching every model whose
    optimizer steps; print the findings when it ends and exit with its status."""
    from gradsight.cli.run import run_command

    status = run_command(
        script, ctx.args, run_dir=run_dir, every=every, activations_every=activations_every
    )
    if status:
        raise typer.Exit(status)


@app.command(epilog="Example: gradsight examples --show digits_sigmoid_deep > mine.toml")
def examples(
    show: Annotated[
        str | None, typer.Option("--show", help="Print this example's TOML instead.")
    ] = None,
) -> None:
    """List the packaged example configs; `gradsight train NAME` runs one by name."""
    from gradsight.cli.examples import examples_command

    status = examples_command(show)
    if status:
        raise typer.Exit(status)


@app.command(epilog="Example: gradsight demo --run-dir runs/demo")
def demo(
    run_dir: Annotated[Path, typer.Option("--run-dir", help="Where the runs go.")] = Path(
        "runs/demo"
    ),
) -> None:
    """Train a deep sigmoid MLP that fails and a ReLU MLP that learns, side by side."""
    from gradsight.cli.demo import run_demo

    run_demo(console, run_dir)


# The exit status of `diagnose --fail-on` when a finding reaches the threshold.
FINDINGS_FAILED = 1


def _load_run(run_dir: Path):
    """run.json and History of a run directory, or the bad-input exit (one line)."""
    from gradsight.telemetry import History, read_run

    if not run_dir.is_dir():
        raise fail(f"{run_dir} is not a run directory (no such folder)")
    try:
        info = read_run(run_dir)
        history = History.load(run_dir)
    except FileNotFoundError as error:
        raise fail(str(error)) from None
    except (InputError, OSError) as error:
        raise fail(f"{run_dir}: cannot read the run: {error}") from None
    if len(history) == 0:
        raise fail(f"{run_dir}: no metrics logged yet")
    return info, history


def _can_write(folder: Path) -> bool:
    """Whether a file can be created in `folder` (tried, not guessed from permissions:
    root ignores them, a read-only filesystem does not)."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def _state_of_run(run_dir: Path, info: dict, history) -> None:
    """One line on stderr for a run that did not finish: its status and the steps it holds."""
    status = info.get("status")
    if status != "finished":
        steps = history.frame()["step"]
        held = f"{steps.nunique()} steps (0 to {steps.max()})" if len(steps) else "no steps"
        typer.echo(f"note: {run_dir} did not finish (status {status}); it holds {held}", err=True)


def _run_diagnosis(run_dir: Path, history, findings_dir: Path | None = None):
    """`diagnose(history)`, saved as findings.json in `findings_dir` (default the run
    directory); not saved, with a note on stderr, where that folder cannot be written."""
    from gradsight.diagnosis import diagnose, save_findings

    findings = diagnose(history)
    folder = findings_dir or run_dir
    if _can_write(folder):
        save_findings(findings, folder / FINDINGS_JSON)
    else:
        typer.echo(f"note: {folder} cannot be written; findings.json not saved", err=True)
    return findings


@app.command(epilog="Example: gradsight report runs/demo/digits_sigmoid_deep")
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (run.json, metrics/).")],
    out: Annotated[
        Path | None, typer.Option("--out", help="The HTML file (default RUN_DIR/report.html).")
    ] = None,
) -> None:
    """Write a run's report: one self-contained HTML page, and its figures as PNG files.

    Uses RUN_DIR/findings.json when present; otherwise diagnoses the run and writes it.
    """
    from gradsight.diagnosis import load_findings
    from gradsight.report import report as write_report

    info, history = _load_run(run_dir)
    out = out or run_dir / REPORT_HTML
    if out.is_dir():
        raise fail(f"--out {out} is a folder; give the HTML file to write")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise fail(f"--out {out}: cannot make its folder ({error.strerror})") from None
    if not _can_write(out.parent):
        raise fail(f"--out {out}: cannot write in {out.parent}")
    # A run directory that cannot be written (archived, shared, read-only) is only read:
    # figures and findings then go beside the page.
    beside = run_dir if _can_write(run_dir) else out.parent
    findings_file = run_dir / FINDINGS_JSON
    findings = None
    if findings_file.is_file():
        try:
            findings = load_findings(findings_file)
        except (ValueError, TypeError, KeyError) as error:
            raise fail(f"{findings_file}: not a findings file: {error}") from None
    _state_of_run(run_dir, info, history)  # after the last way to fail: an error is one line
    if findings is None:
        findings = _run_diagnosis(run_dir, history, beside)
    path = write_report(
        history,
        findings,
        out,
        title=str((info.get("config") or {}).get("name") or run_dir.name),
        run_info=info,
        figures_dir=beside / "figures",
    )
    typer.echo(f"report: {path}")  # plain and unwrapped, for scripts


@app.command(epilog="Example: gradsight diagnose runs/demo/digits_sigmoid_deep --fail-on critical")
def diagnose(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (run.json, metrics/).")],
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on",
            help="Exit with status 1 when a finding is this severe or worse: warning | critical.",
        ),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Print the findings as a JSON list (nothing else on stdout)."),
    ] = False,
) -> None:
    """Diagnose a run: print its findings and remedies, and write RUN_DIR/findings.json."""
    from gradsight.cli.console import findings_json
    from gradsight.diagnosis.finding import SEVERITY_RANK
    from gradsight.diagnosis.finding_text import print_findings

    if fail_on is not None and fail_on not in ("warning", "critical"):
        raise fail(f"--fail-on must be warning or critical, got {fail_on!r}")
    info, history = _load_run(run_dir)
    _state_of_run(run_dir, info, history)
    findings = _run_diagnosis(run_dir, history)
    if json_output:
        typer.echo(findings_json(findings))
    else:
        print_findings(console, findings)
    if fail_on is not None and any(
        SEVERITY_RANK[f.severity] >= SEVERITY_RANK[fail_on] for f in findings
    ):
        raise typer.Exit(FINDINGS_FAILED)


@app.command("lr-find", epilog="Example: gradsight lr-find examples/digits_relu_he_adam.toml")
def lr_find_command(
    config: Annotated[Path, typer.Argument(help="TOML config; its \\[train] optimizer is tested.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a value, e.g. --set train.momentum=0.9."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="The plot (default NAME-lr-find.png).")
    ] = None,
    start_lr: Annotated[float, typer.Option("--start-lr", help="First learning rate.")] = 1e-7,
    end_lr: Annotated[float, typer.Option("--end-lr", help="Last learning rate.")] = 10.0,
    num_it: Annotated[int, typer.Option("--num-it", help="Steps of the test.")] = 100,
) -> None:
    """Run the LR range test (Smith 2017) on a config's model and task; print the suggestions."""
    from gradsight.cli.lr_find import describe, lr_find_from_config

    try:
        result, png = lr_find_from_config(
            config, set_ or [], out, start_lr=start_lr, end_lr=end_lr, num_it=num_it
        )
    except InputError as error:  # ConfigError is an InputError
        raise fail(f"lr-find: {error}") from None
    console.print(describe(result), markup=False, highlight=False)
    console.print(f"plot: {png}", markup=False, highlight=False)


@app.command(
    epilog="Example: gradsight playground --surface saddle --optimizer sgd --optimizer adam"
)
def playground(
    surface: Annotated[
        str,
        typer.Option(
            "--surface",
            help="saddle | monkey_saddle | ill_conditioned | rosenbrock | beale | himmelblau "
            "| plateau.",
        ),
    ] = "saddle",
    optimizer: Annotated[
        list[str] | None,
        typer.Option("--optimizer", help="An optimizer name (repeatable; default: six of them)."),
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out-dir", help="Where SURFACE.png and SURFACE.gif go.")
    ] = Path("playground"),
    steps: Annotated[
        int | None, typer.Option("--steps", help="Steps per optimizer (default: the surface's).")
    ] = None,
    frames: Annotated[int, typer.Option("--frames", help="Frames of the GIF.")] = 40,
) -> None:
    """Race optimizers over a 2D loss surface: a PNG, an animated GIF and a summary table."""
    from gradsight.cli.console import print_playground
    from gradsight.playground import DEFAULT_OPTIMIZERS
    from gradsight.playground import playground as run_playground

    try:
        result = run_playground(
            surface, optimizer or DEFAULT_OPTIMIZERS, out_dir=out_dir, steps=steps, frames=frames
        )
    except InputError as error:
        raise fail(f"playground: {error}") from None
    print_playground(console, result.summary)
    console.print(f"wrote {result.png} and {result.gif}", markup=False, highlight=False)


@app.command(
    "doctor",
    epilog="Examples: gradsight doctor examples/digits_sigmoid_deep.toml --steps 200 --run-dir "
    "runs/doctor; gradsight doctor --model mypkg.models:build --task digits --lr 0.1",
)
def doctor_cmd(
    config: Annotated[
        Path | None,
        typer.Argument(help="A `gradsight train` TOML config: model, task and \\[train] settings."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Instead of a config: pkg.module:build_fn returning an nn.Module "
            "(given seed= if it takes one).",
        ),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            "--task", help="With --model: a built-in task, or pkg.module:data_fn returning a Task."
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config value, e.g. --set train.lr=0.01."),
    ] = None,
    optimizer: Annotated[
        str | None, typer.Option("--optimizer", help="Baseline optimizer (default: sgd).")
    ] = None,
    lr: Annotated[
        float | None, typer.Option("--lr", help="Baseline learning rate (default: the rule's).")
    ] = None,
    steps: Annotated[
        int | None, typer.Option("--steps", help="Steps per training run (default 300).")
    ] = None,
    seeds: Annotated[int, typer.Option("--seeds", help="Seeds per remedy.")] = 3,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Examples per step (default 64).")
    ] = None,
    remedy: Annotated[
        list[str] | None,
        typer.Option("--remedy", help="A remedy to try; a+b combines (repeatable; default auto)."),
    ] = None,
    executor: Annotated[
        str, typer.Option("--executor", help="Where the runs go: local | ray.")
    ] = "local",
    workers: Annotated[
        int, typer.Option("--workers", help="Local processes training at once.")
    ] = 1,
    address: Annotated[
        str | None,
        typer.Option("--address", help="Ray cluster address (auto or HOST:PORT; default: local)."),
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option("--run-dir", help="Also write DIR/doctor.html and DIR/prescription.json."),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the prescription as JSON (as DIR/prescription.json; nothing else on "
            "stdout).",
        ),
    ] = False,
) -> None:
    """Try the remedies on your model and say which one measurably helps.

    A config's settings are the baseline; --steps, --seeds and the other options override them.
    """
    from gradsight.cli.doctor import doctor_command

    status = doctor_command(
        config,
        model=model,
        task=task,
        overrides=set_ or (),
        optimizer=optimizer,
        lr=lr,
        steps=steps,
        seeds=seeds,
        batch_size=batch_size,
        remedies=remedy or (),
        executor=executor,
        workers=workers,
        address=address,
        run_dir=run_dir,
        json_output=json_output,
    )
    if status:
        raise typer.Exit(status)


def main() -> None:
    """Console-script entry point."""
    app()
