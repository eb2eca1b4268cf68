"""Run experiments and write their pages: NAME/index.html, NAME/figures/*.png, results.json.

```
OUT/
  index.html                  (run_all) every experiment, its question and verdicts
  sigmoid-product/
    index.html                question, claims (held / not held, numbers), figures inline
    figures/*.png
    results.json              claims, params, tables as records
```

Pages are self-contained like the report's (`gradsight.report.html`): CSS inline, figures
as base64 PNG data URIs, no script and no external URL; every string is autoescaped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from gradsight._version import __version__
from gradsight.drawing import png_data_uri, to_png
from gradsight.errors import InputError
from gradsight.executor import torch_threads
from gradsight.files import write_atomic
from gradsight.lab.experiment import Experiment, ExperimentResult, LabConfig, _jsonable
from gradsight.lab.registry import EXPERIMENTS
from gradsight.report.html import format_value

# The lab runs on one torch thread: its nets (width <= 128, batches <= 256) are too small
# for intra-op parallelism to pay; `lab run all --quick` took 21.6 s on one thread against
# 67 s on two, on 2 cores (benchmarks/lab.py). This covers an experiment's own work (setup,
# claims, figures); its trials run on `executor.JOB_THREADS` (also 1) wherever they run.
# None leaves torch's setting alone.
LAB_THREADS: int | None = 1


def get_experiment(name: str) -> Experiment:
    """The registered experiment `name`.

    Raises:
        InputError: If there is none, naming the valid ones.
    """
    if name not in EXPERIMENTS:
        raise InputError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("gradsight.lab", "templates"),
        autoescape=True,  # every string is escaped, whatever the file extension
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _mode(config: LabConfig) -> str:
    return "quick" if config.quick else "full"


def write_experiment(experiment: Experiment, result: ExperimentResult, config: LabConfig) -> Path:
    """Write OUT/NAME/index.html, figures/*.png and results.json; returns the page."""
    folder = config.out_dir / experiment.name
    figures_dir = folder / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    figures = []
    for stem, figure in result.figures.items():
        png = to_png(figure)
        write_atomic(figures_dir / f"{stem}.png", png)
        src = png_data_uri(png)
        figures.append({"name": stem, "src": src, "caption": result.captions.get(stem, "")})
    page = (
        _environment()
        .get_template("experiment.html.j2")
        .render(
            name=experiment.name,
            title=experiment.title,
            question=experiment.question,
            mode=_mode(config),
            n_held=sum(c.held for c in result.claims),
            claims=[
                {
                    "statement": c.statement,
                    "held": c.held,
                    "central": c.central,
                    "verdict": c.verdict,
                    "control": c.control,
                    "second_look": c.second_look,
                    "numbers": [(k, format_value(_jsonable(v))) for k, v in c.numbers.items()],
                }
                for c in result.claims
            ],
            figures=figures,
            params=[(k, format_value(_jsonable(v))) for k, v in result.params.items()],
            version=__version__,
            generated=_now(),
            elapsed=f"{result.elapsed_s:.1f} s",
        )
    )
    path = folder / "index.html"
    write_atomic(path, page)
    results = {
        "name": experiment.name,
        "title": experiment.title,
        "question": experiment.question,
        "mode": _mode(config),
        "seeds": len(config.seed_list),
        "elapsed_s": round(result.elapsed_s, 3),
        "version": __version__,
        "generated": _now(),
        "params": _jsonable(result.params),
        "claims": [c.to_dict() for c in result.claims],
        "figures": [f"figures/{stem}.png" for stem in result.figures],
        "tables": {k: _jsonable(df.to_dict(orient="records")) for k, df in result.tables.items()},
    }
    write_atomic(folder / "results.json", json.dumps(results, indent=1))
    return path


def run_experiment(name: str, config: LabConfig | None = None) -> ExperimentResult:
    """Run one experiment and write its page under `config.out_dir / name`.

    Args:
        name: A key of `EXPERIMENTS`.
        config: Mode, seeds, output folder and progress bar (default: full mode, ./lab).

    Returns:
        The result, with `elapsed_s` and `page` set.

    Raises:
        InputError: If `name` is not a registered experiment.
    """
    config = config or LabConfig()
    experiment = get_experiment(name)
    started = time.perf_counter()
    with torch_threads(LAB_THREADS):
        result = experiment.run(config)
    result.elapsed_s = time.perf_counter() - started
    result.page = write_experiment(experiment, result, config)
    return result


def write_index(results: dict[str, ExperimentResult], config: LabConfig) -> Path:
    """Write OUT/index.html linking the experiments' pages, with their verdicts."""
    claims = [c for r in results.values() for c in r.claims]
    page = (
        _environment()
        .get_template("index.html.j2")
        .render(
            mode=_mode(config),
            n_held=sum(c.held for c in claims),
            n_claims=len(claims),
            experiments=[
                {
                    "name": name,
                    "title": EXPERIMENTS[name].title,
                    "question": EXPERIMENTS[name].question,
                    "href": f"{name}/index.html",
                    "claims": result.claims,
                }
                for name, result in results.items()
            ],
            version=__version__,
            generated=_now(),
        )
    )
    config.out_dir.mkdir(parents=True, exist_ok=True)
    path = config.out_dir / "index.html"
    write_atomic(path, page)
    return path


def run_all(
    config: LabConfig | None = None, names: Sequence[str] | None = None
) -> dict[str, ExperimentResult]:
    """Run every experiment (or `names`), write each page and OUT/index.html.

    Returns:
        The results by name, in registry order.
    """
    config = config or LabConfig()
    names = list(EXPERIMENTS) if names is None else [get_experiment(n).name for n in names]
    results = {name: run_experiment(name, config) for name in names}
    write_index(results, config)
    return results
