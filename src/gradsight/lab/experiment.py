"""What an experiment is: its config, its measurements, its claims, its result.

An experiment is a name, a question and three functions: `measure(config) -> Measured`
runs the grid, `claims(measured) -> list[Claim]` checks the theory on it, and
`figures(measured) -> (figures, captions)` draws it; `Experiment.run` composes them. It
knows nothing of pages or the command line (`gradsight.lab.runner` writes those).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from matplotlib.figure import Figure
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

from gradsight.errors import InputError
from gradsight.executor import Executor
from gradsight.progress import ProgressBar
from gradsight.stats import Spread

T = TypeVar("T")
R = TypeVar("R")

# Seeds when `LabConfig.seeds` is not given: few in quick mode (tests, a first look), more
# for the figures of the docs.
QUICK_SEEDS = 2
FULL_SEEDS = 5


@dataclass(frozen=True)
class LabConfig:
    """How to run an experiment.

    Attributes:
        quick: Small grids and few steps (tests; about a minute per experiment on 2 cores);
            False runs the full grids that make the docs' figures.
        seeds: Seeds per configuration; None takes QUICK_SEEDS or FULL_SEEDS.
        out_dir: Where `run_experiment` writes NAME/index.html, figures and results.json.
        progress: Show a progress bar over configurations (on a terminal or in a notebook).
        executor: Where `map` runs the grid's jobs (here, local processes, Ray).
    """

    quick: bool = False
    seeds: int | None = None
    out_dir: Path = Path("lab")
    progress: bool = False
    executor: Executor = field(default_factory=Executor)

    def __post_init__(self) -> None:
        if self.seeds is not None and (not isinstance(self.seeds, int) or self.seeds < 1):
            raise InputError(f"seeds must be an int >= 1, got {self.seeds!r}")
        object.__setattr__(self, "out_dir", Path(self.out_dir))

    @property
    def seed_list(self) -> list[int]:
        """The seeds every configuration is run with: 0, 1, ..."""
        return list(range(self.seeds or (QUICK_SEEDS if self.quick else FULL_SEEDS)))

    def pick(self, quick: T, full: T) -> T:
        """`quick` in quick mode, else `full` (grids, step budgets)."""
        return quick if self.quick else full

    def map(self, job: Callable[[T], R], items: Iterable[T], description: str) -> list[R]:
        """`[job(item) for item in items]` on the config's executor, with a progress bar.

        The job must be picklable (a module-level function, or a `functools.partial` of one)
        and seed itself; it runs on one torch thread wherever it runs, so the results do not
        depend on the executor.
        """
        items = list(items)
        with self._bar(description, len(items)) as advance:
            return self.executor.map(job, items, done=advance)

    @contextmanager
    def _bar(self, description: str, total: int) -> Iterator[Callable[[], None]]:
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        bar = ProgressBar(*columns, total=total, enabled=self.progress, description=description)
        with bar:
            yield bar.advance

    def track(self, items: Iterable[T], description: str) -> Iterator[T]:
        """Iterate over `items` here, with a progress bar (for loops that stay serial)."""
        items = list(items)
        with self._bar(description, len(items)) as advance:
            for item in items:
                yield item
                advance()


@dataclass(frozen=True)
class Claim:
    """A statement of the theory checked on measurements.

    Attributes:
        statement: What the seed or the paper says, as a checkable sentence.
        held: Whether the measurements support it (by the rule in `verdict`).
        numbers: The measured values behind the verdict (means, spreads, intervals).
        verdict: One line: the decision rule and what was measured.
        central: The experiment's main claim (the tests assert it holds).
        name: The key of the `ClaimSpec` it was judged from ("" for a claim built by hand).
        control: What the measurement varied and what it held fixed.
        second_look: When it did not hold: whether a confound was found and controlled, and
            what the controlled measurement says ("" otherwise).
    """

    statement: str
    held: bool
    numbers: Mapping[str, Any]
    verdict: str
    central: bool = False
    name: str = ""
    control: str = ""
    second_look: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN and infinities become None)."""
        return {
            "statement": self.statement,
            "held": bool(self.held),
            "numbers": {k: _jsonable(v) for k, v in self.numbers.items()},
            "verdict": self.verdict,
            "central": self.central,
            "name": self.name,
            "control": self.control,
            "second_look": self.second_look,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Spread):
        return {k: _jsonable(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "item"):  # numpy and torch scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class ExperimentResult:
    """What an experiment measured, drew and concluded.

    Attributes:
        tables: Tidy DataFrames of the measurements (one row per configuration, seed, ...).
        figures: Figures by file stem (drawn without pyplot, `drawing.new_figure`).
        captions: One caption per figure stem (what to look at).
        claims: The checked claims, held or not, in the order of the question.
        params: The grid and budgets actually used (depths, steps, seeds, ...).
        elapsed_s: Wall time of `run`, set by the runner.
        page: The HTML page, once `run_experiment` wrote it.
    """

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = math.nan
    page: Path | None = None


@dataclass
class Measured:
    """What an experiment's `measure` returns, and its `claims` and `figures` read.

    Attributes:
        tables: Tidy DataFrames of the measurements, saved in results.json.
        params: The grid and budgets actually used (depths, steps, seeds, ...), shown on the page.
        data: Anything else the claims or figures read (gradient flows, loss curves, run
            values such as the deepest depth), not saved.
    """

    tables: dict[str, pd.DataFrame]
    params: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)


Figures = tuple[dict[str, Figure], dict[str, str]]


def compose(
    measure: Callable[[LabConfig], Measured],
    claims: Callable[[Measured], list[Claim]],
    figures: Callable[[Measured], Figures],
    config: LabConfig,
) -> ExperimentResult:
    """Measure, check the claims, draw: the `ExperimentResult` of one run."""
    measured = measure(config)
    drawn, captions = figures(measured)
    return ExperimentResult(
        tables=measured.tables,
        figures=drawn,
        captions=captions,
        claims=claims(measured),
        params=measured.params,
    )


@dataclass(frozen=True)
class Experiment:
    """One experiment of the lab.

    Give either `measure`, `claims` and `figures` (`run` is then their composition) or a
    `run` of your own.

    Attributes:
        name: The CLI name (`gradsight lab run NAME`), kebab-case.
        title: A short title for pages and tables.
        question: One sentence: what it answers, citing the paper.
        run: Measures, draws and checks the claims for a `LabConfig`.
        measure: Runs the grid for a `LabConfig`.
        claims: Checks the claims on the measurements.
        figures: Draws the measurements: figures and captions by file stem.
    """

    name: str
    title: str
    question: str
    run: Callable[[LabConfig], ExperimentResult] | None = None
    measure: Callable[[LabConfig], Measured] | None = None
    claims: Callable[[Measured], list[Claim]] | None = None
    figures: Callable[[Measured], Figures] | None = None

    def __post_init__(self) -> None:
        parts = (self.measure, self.claims, self.figures)
        if self.run is None:
            if any(p is None for p in parts):
                raise InputError(f"{self.name}: give run, or measure, claims and figures")
            object.__setattr__(self, "run", partial(compose, *parts))
