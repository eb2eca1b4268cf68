"""`report`: one self-contained HTML page of a run: findings first, then run info and figures.

The page has its CSS inline and its figures as base64 PNG data URIs: no JavaScript, no
external URL of any kind, so it opens offline and can be mailed as one file. Every string
that comes from the user or the run (title, layer names, config values, finding texts) goes
through Jinja2's autoescaping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from jinja2 import Environment, PackageLoader, StrictUndefined

from gradsight._version import __version__
from gradsight.diagnosis import Finding
from gradsight.diagnosis.finding import SEVERITY_RANK
from gradsight.diagnosis.finding_html import format_value as finding_value
from gradsight.drawing import png_data_uri
from gradsight.files import write_atomic
from gradsight.report.figures import render_figures, write_pngs
from gradsight.report.report_path import ReportPath
from gradsight.telemetry import History
from gradsight.telemetry.coverage import Coverage

TEMPLATE = "report.html.j2"
RUN_FIELDS = ("status", "seed", "start_time", "end_time", "duration_s", "error")


class Section(NamedTuple):
    """A part of the page after the findings, made by another tool (the doctor's section).

    Attributes:
        title: The heading.
        html: The body: a `markupsafe.Markup` (HTML rendered with autoescaping) goes in as
            it is; any other string is escaped, so it shows as plain text.
        id: The heading's anchor.
    """

    title: str
    html: str
    id: str = "section"


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("gradsight.report", "templates"),
        autoescape=True,  # every user string is escaped, whatever the file extension
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def format_value(value: Any) -> str:
    """A short readable form of a number, list or other value for a table cell (a list in
    brackets)."""
    text = finding_value(value)
    is_list = isinstance(value, Sequence) and not isinstance(value, str)
    return f"[{text}]" if is_list else text


def flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts as (dotted key, formatted value) rows."""
    rows = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            rows.extend(flatten(value, f"{name}."))
        else:
            rows.append((name, format_value(value)))
    return rows


def _steps_text(steps: Sequence[int]) -> str:
    if not steps:
        return ""
    if len(steps) > 2 and list(steps) == list(range(steps[0], steps[-1] + 1)):
        return f"{steps[0]}–{steps[-1]}"
    return format_value(list(steps)).strip("[]")


def _finding_view(finding: Finding) -> dict[str, Any]:
    return {
        "kind": finding.kind,
        "title": finding.kind.replace("_", " "),
        "severity": finding.severity,
        "summary": finding.summary,
        "explanation": finding.explanation,
        "layers": format_value(list(finding.layers)).strip("[]"),
        "steps": _steps_text(finding.steps),
        # One row per evidence key; a per-layer dict stays on its row ("fc1: 0.1, fc2: ...").
        "evidence": [(k, format_value(v)) for k, v in finding.evidence.items()],
        "remedies": [
            {"name": r.name, "description": r.description, "reason": r.reason}
            for r in finding.remedies
        ],
    }


def _coverage_line(history: History) -> str | None:
    """What the watch measured and what not (`Watch.coverage`), when the run recorded it."""
    data = history.meta.get("coverage")
    return Coverage.from_dict(data).summary() if isinstance(data, dict) else None


def _run_view(run_info: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not run_info:
        return None
    known = {*RUN_FIELDS, "config", "versions", "metrics", "meta"}  # meta: in History.meta
    return {
        "fields": [(k, format_value(run_info[k])) for k in RUN_FIELDS if k in run_info],
        "status": str(run_info.get("status", "")),
        "unfinished": run_info.get("status") == "running",
        "config": flatten(run_info.get("config") or {}),
        "metrics": flatten(run_info.get("metrics") or {}),
        "versions": flatten(run_info.get("versions") or {}),
        "other": flatten({k: v for k, v in run_info.items() if k not in known}),
    }


def report(
    history: History,
    findings: Sequence[Finding],
    path: str | Path,
    *,
    title: str | None = None,
    run_info: Mapping[str, Any] | None = None,
    figures_dir: str | Path | None = None,
    sections: Sequence[Section] = (),
) -> ReportPath:
    """Write a run's report as one self-contained HTML file.

    Args:
        history: What the run measured (`gs.History`, `History.load(run_dir)`).
        findings: The diagnosis (`gs.diagnose(history)`); shown most severe first.
        path: The HTML file to write (a run directory's `report.html`).
        title: The page title; default: the config's name, else "gradsight report".
        run_info: The run's run.json (`gradsight.telemetry.read_run`): config, status,
            versions, final metrics. None leaves the run section out.
        figures_dir: Also write the figures there as PNG files (a run's `figures/`).
        sections: More parts after the findings, e.g. the doctor's
            (`gradsight.doctor.page.section(prescription)`).

    Returns:
        The path written: a `pathlib.Path` that a notebook displays as the page itself.
    """
    path = ReportPath(path)
    rendered = render_figures(history)
    if figures_dir is not None:
        write_pngs(rendered, figures_dir)
    ordered = sorted(findings, key=lambda f: -SEVERITY_RANK[f.severity])  # stable
    counts = {s: sum(f.severity == s for f in ordered) for s in ("critical", "warning", "info")}
    name = ((run_info or {}).get("config") or {}).get("name")
    page = (
        _environment()
        .get_template(TEMPLATE)
        .render(
            title=title or (str(name) if name else "gradsight report"),
            findings=[_finding_view(f) for f in ordered],
            counts=counts,
            run=_run_view(run_info),
            coverage=_coverage_line(history),
            sections=list(sections),
            figures=[
                {
                    "name": f.spec.name,
                    "title": f.spec.title,
                    "caption": f.spec.caption,
                    "src": png_data_uri(f.png),
                }
                for f in rendered
            ],
            version=__version__,
            generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, page)
    return path
