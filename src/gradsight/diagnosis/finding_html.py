"""Findings as HTML cards for a notebook, laid out like the report's: a severity badge, the
kind, the sentence with its numbers, where (layers, steps), the mechanism, the evidence table
and the remedies best first.

Styles are inline (a notebook's output has no stylesheet of ours) and every text is escaped:
layer names, summaries and evidence come from the user's model and run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gradsight.diagnosis.finding import Finding

# Lists longer than this (layers, steps, evidence arrays) are shortened, with their length.
MAX_ITEMS = 12
COLOURS = {"critical": "#c62828", "warning": "#b87d00", "info": "#2d6fcc"}
FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:13px;color:#1d2430"
CARD = (
    f"{FONT};background:#fff;border:1px solid #d5d9e0;border-left:6px solid {{colour}};"
    "border-radius:6px;padding:10px 14px;margin:0 0 10px;max-width:820px"
)
BADGE = (
    "display:inline-block;font-size:11px;font-weight:700;text-transform:uppercase;color:#fff;"
    "background:{colour};border-radius:4px;padding:1px 6px;margin-right:8px"
)
CODE = "font-family:ui-monospace,Menlo,Consolas,monospace;background:#eef0f4;padding:0 3px"
CELL = "text-align:left;padding:2px 14px 2px 0;vertical-align:top"
MUTED = "color:#5b6472"
NONE = (
    f"{FONT};background:#fff;border:1px solid #d5d9e0;border-left:6px solid #2e7d32;"
    "border-radius:6px;padding:10px 14px;max-width:820px"
)


def format_value(value: Any) -> str:
    """A short readable form of an evidence value: 4 significant digits, long lists cut."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        items = [f"{k}: {format_value(v)}" for k, v in list(value.items())[:MAX_ITEMS]]
        more = f", … ({len(value)} in all)" if len(value) > MAX_ITEMS else ""
        return ", ".join(items) + more
    if isinstance(value, Sequence) and not isinstance(value, str):
        items = [format_value(v) for v in value[:MAX_ITEMS]]
        more = f", … ({len(value)} in all)" if len(value) > MAX_ITEMS else ""
        return ", ".join(items) + more
    return str(value)


def steps_text(steps: Sequence[int]) -> str:
    """Steps as "a–b" when they are a run of consecutive steps, else as a (cut) list."""
    if len(steps) > 2 and list(steps) == list(range(steps[0], steps[-1] + 1)):
        return f"{steps[0]}–{steps[-1]}"
    return format_value(list(steps))


def finding_html(finding: Finding, compact: bool = False) -> str:
    """One finding as a card; `compact` keeps the badge, the kind and the summary only."""
    colour = COLOURS[finding.severity]
    parts = [
        f'<div style="{CARD.format(colour=colour)}">',
        f'<span style="{BADGE.format(colour=colour)}">{escape(finding.severity)}</span>'
        f"<strong>{escape(finding.kind.replace('_', ' '))}</strong> "
        f'<code style="{CODE}">{escape(finding.kind)}</code>',
        f'<p style="font-weight:600;margin:6px 0">{escape(finding.summary)}</p>',
    ]
    if not compact:
        parts += [_where(finding), _explanation(finding), _evidence(finding), _remedies(finding)]
    parts.append("</div>")
    return "\n".join(part for part in parts if part)


def findings_html(findings: Sequence[Finding]) -> str:
    """Every finding as a card, under a tally by severity; an empty list says so."""
    if not findings:
        return (
            f'<div style="{NONE}"><strong>No problem found</strong>: nothing in the recorded '
            "metrics crossed a diagnosis threshold.</div>"
        )
    counts = {s: sum(f.severity == s for f in findings) for s in COLOURS}
    tally = ", ".join(f"{n} {severity}" for severity, n in counts.items() if n)
    noun = "finding" if len(findings) == 1 else "findings"
    header = (
        f'<p style="{FONT};margin:0 0 8px"><strong>{len(findings)} {noun}</strong>: {tally}</p>'
    )
    return "\n".join([header, *(finding_html(f) for f in findings)])


def _where(finding: Finding) -> str:
    where = []
    if finding.layers:
        where.append(f'Layers: <code style="{CODE}">{escape(format_value(finding.layers))}</code>')
    if finding.steps:
        where.append(f"Steps: {escape(steps_text(finding.steps))}")
    return f'<p style="{MUTED};margin:4px 0">{" · ".join(where)}</p>' if where else ""


def _explanation(finding: Finding) -> str:
    return (
        f'<p style="margin:4px 0">{escape(finding.explanation)}</p>' if finding.explanation else ""
    )


def _evidence(finding: Finding) -> str:
    if not finding.evidence:
        return ""
    rows = [
        f'<tr><td style="{CELL}"><code style="{CODE}">{escape(str(key))}</code></td>'
        f'<td style="{CELL}">{escape(format_value(value))}</td></tr>'
        for key, value in finding.evidence.items()
    ]
    header = (
        f'<tr><th style="{CELL};{MUTED}">evidence</th><th style="{CELL};{MUTED}">value</th></tr>'
    )
    return (
        '<table style="border-collapse:collapse;margin:6px 0">'
        + header
        + "".join(rows)
        + "</table>"
    )


def _remedies(finding: Finding) -> str:
    if not finding.remedies:
        return ""
    items = [
        f'<li><code style="{CODE}">{escape(r.name)}</code>: {escape(r.description)}'
        + (f" <em>{escape(r.reason)}</em>" if r.reason else "")
        + "</li>"
        for r in finding.remedies
    ]
    return (
        "<strong>Remedies, best first</strong>"
        f'<ol style="margin:4px 0 0;padding-left:22px">{"".join(items)}</ol>'
    )
