"""A `Prescription` as a page and a record: `write(prescription, run_dir)` writes

- run_dir/doctor.html: one self-contained page like the report's (its CSS inline, the figure
  a base64 PNG, every string autoescaped by Jinja2): the prescription, the improvement figure,
  the trials table, what each remedy changes, and the baseline's findings;
- run_dir/prescription.json: the same, machine-readable (NaN written as null).

`section(prescription)` is the page's content as a part of the report:
`gs.report(history, findings, path, sections=[section(prescription)])`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from gradsight._version import __version__
from gradsight.doctor.figure import improvement_figure
from gradsight.drawing import png_data_uri, to_png
from gradsight.files import write_atomic
from gradsight.report.html import Section, format_value

if TYPE_CHECKING:
    from gradsight.doctor import Prescription

PAGE, FRAGMENT = "doctor.html.j2", "doctor_section.html.j2"
HTML_NAME, JSON_NAME = "doctor.html", "prescription.json"
# Config diffs: remedy name -> diff lines ("  [model]", "- key = old", "+ key = new"), or None
# where the remedy has no config form (its code change stands).
ConfigDiffs = Mapping[str, Sequence[str] | None]


def _environment() -> Environment:
    # The doctor's templates first; report.html.j2 (extended by the page) from the report.
    loader = ChoiceLoader(
        [PackageLoader("gradsight.doctor", "templates"), PackageLoader("gradsight.report")]
    )
    return Environment(
        loader=loader,
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _plain(value: Any) -> Any:
    """A JSON-ready value: numpy scalars as Python numbers, NaN/inf as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def record(prescription: Prescription, config_diffs: ConfigDiffs | None = None) -> dict[str, Any]:
    """The prescription as a JSON-ready dict: best, metric, settings, baseline, trials (one
    record per remedy, best first), findings, changes, skipped, and config_diff if given."""
    data = {
        "best": prescription.best,
        "metric": prescription.metric,
        "settings": dict(prescription.settings),  # non-JSON values are written as str
        "baseline": prescription.baseline.to_dict(),
        "trials": prescription.trials.to_dict(orient="records"),
        "findings": [f.to_dict() for f in prescription.findings],
        "changes": {k: list(v) for k, v in prescription.changes.items()},
        "skipped": dict(prescription.skipped),
    }
    for extra in dataclasses.fields(prescription):  # fields added later (curvature, ...)
        if extra.name not in data and extra.name not in ("baseline", "trials"):
            value = getattr(prescription, extra.name)
            data[extra.name] = (
                dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
            )
    if config_diffs is not None:
        data["config_diff"] = {k: None if v is None else list(v) for k, v in config_diffs.items()}
    return _plain(data)


def _number(value: Any, spread: Any = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    text = format_value(float(value))
    if spread is not None and math.isfinite(float(spread)):
        text += f" ± {float(spread):.2g}"
    return text


def _rows(prescription: Prescription) -> tuple[list[str], list[dict[str, Any]]]:
    """The trials table's header and rows, the baseline first; columns the page does not
    know are shown after its own, as they are."""
    key = f"test_{prescription.metric}"
    known = {"remedy", "train_loss", "train_loss_std", key, f"{key}_std", "flow_ratio",
             "improvement", "ci_low", "ci_high", "remaining"}  # fmt: skip
    extra = [c for c in prescription.baseline.index if c not in known]
    columns = ["remedy", "train loss", key.replace("_", " "), "flow ratio", "improvement",
               "95% interval", "findings remaining"]  # fmt: skip
    columns += [c.replace("_", " ") for c in extra]
    rows = []
    for row in [prescription.baseline, *(r for _, r in prescription.trials.iterrows())]:
        baseline = row is prescription.baseline
        interval = "" if baseline else f"{_number(row['ci_low'])} to {_number(row['ci_high'])}"
        cells = [
            row["remedy"],
            _number(row["train_loss"], row["train_loss_std"]),
            _number(row[key], row[f"{key}_std"]),
            _number(row["flow_ratio"]),
            "0 (reference)" if baseline else _number(row["improvement"]),
            interval,
            row["remaining"],
        ]
        cells += [format_value(_plain(row[c])) for c in extra]
        cls = "baseline" if baseline else "best" if row["remedy"] == prescription.best else ""
        rows.append({"cells": cells, "cls": cls})
    return columns, rows


def _diff_view(lines: Sequence[str]) -> list[dict[str, str]]:
    return [{"text": line, "cls": {"+": "add", "-": "del"}.get(line[:1], "")} for line in lines]


def _view(prescription: Prescription, config_diffs: ConfigDiffs | None) -> dict[str, Any]:
    diffs = dict(config_diffs or {})
    figure = improvement_figure(prescription)
    columns, rows = _rows(prescription)
    changes = [
        (name, list(diffs.get(name) or prescription.changes.get(name, ())))
        for name in prescription.trials["remedy"]
    ]
    settings = prescription.settings
    return {
        "summary": prescription.summary(table=False),
        "best_diff": _diff_view(diffs.get(prescription.best) or ()) if prescription.best else [],
        "metric": prescription.metric,
        "figure": None if figure is None else png_data_uri(to_png(figure)),
        "settings_text": ", ".join(f"{k}={format_value(v)}" for k, v in settings.items()),
        "columns": columns,
        "rows": rows,
        "changes": changes,
        "skipped": list(prescription.skipped.items()),
        "findings": [
            {"severity": f.severity, "title": f.kind.replace("_", " "), "summary": f.summary}
            for f in prescription.findings
        ],
    }


def section(prescription: Prescription, config_diffs: ConfigDiffs | None = None) -> Section:
    """The doctor's results as a section of `gs.report`'s page (HTML rendered autoescaped)."""
    html = _environment().get_template(FRAGMENT).render(d=_view(prescription, config_diffs))
    return Section("Doctor", Markup(html), "doctor")


def write(
    prescription: Prescription,
    run_dir: str | Path,
    *,
    title: str | None = None,
    source: str | None = None,
    config_diffs: ConfigDiffs | None = None,
) -> Path:
    """Write run_dir/doctor.html and run_dir/prescription.json.

    Args:
        prescription: What `gs.doctor` returned.
        run_dir: The folder (created if needed).
        title: The page's title; default "gradsight doctor".
        source: What was treated, shown under the title (a config file, a model spec).
        config_diffs: Per remedy, its change as config diff lines (`config_diff.diff_lines`),
            shown in place of its code change; None where it has no config form.

    Returns:
        The HTML page's path.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    page = (
        _environment()
        .get_template(PAGE)
        .render(
            title=title or "gradsight doctor",
            source=source,
            fragment=section(prescription, config_diffs).html,
            version=__version__,
            generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
    )
    path = run_dir / HTML_NAME
    write_atomic(path, page)
    text = json.dumps(record(prescription, config_diffs), indent=2, default=str)
    write_atomic(run_dir / JSON_NAME, text + "\n")
    return path
