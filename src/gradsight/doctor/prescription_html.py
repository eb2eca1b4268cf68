"""A `Prescription` as HTML for a notebook: the verdict in words, the improvement figure, the
trials table (the doctor page's rows) and the baseline's findings as compact cards.

Styles are inline and every text is escaped (remedy names, changes and findings quote the
user's model and settings).
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from gradsight.diagnosis.finding_html import finding_html
from gradsight.doctor.figure import improvement_figure
from gradsight.doctor.page import _rows
from gradsight.drawing import png_data_uri, to_png

if TYPE_CHECKING:
    from gradsight.doctor.prescription import Prescription

BOX = (
    "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:13px;color:#1d2430;"
    "border:1px solid #d5d9e0;border-radius:6px;padding:10px 14px;background:#fff;"
    "max-width:900px"
)
PRE = (
    "white-space:pre-wrap;background:#f6f7f9;border:1px solid #d5d9e0;border-radius:6px;"
    "padding:8px 12px;margin:6px 0;font-size:12px"
)
CELL = "text-align:left;padding:2px 14px 2px 0;vertical-align:top"
ROW_STYLES = {"best": "font-weight:700", "baseline": "color:#5b6472", "": ""}
DPI = 80


def prescription_html(prescription: Prescription) -> str:
    """The prescription as one HTML block."""
    if prescription.best is not None:
        verdict = f"best remedy <code>{escape(prescription.best)}</code>"
    elif prescription.healthy:
        verdict = "no pathology found"
    else:
        verdict = "no remedy proven"
    parts = [
        f'<div style="{BOX}"><strong>Prescription</strong>: {verdict}',
        f'<pre style="{PRE}">{escape(prescription.summary(table=False))}</pre>',
        _figure(prescription),
        _trials(prescription),
        '<p style="margin:8px 0 4px"><strong>Baseline findings</strong></p>',
        "\n".join(finding_html(f, compact=True) for f in prescription.findings)
        or "<p>The baseline's diagnosis found nothing.</p>",
        "</div>",
    ]
    return "\n".join(part for part in parts if part)


def _figure(prescription: Prescription) -> str:
    fig = improvement_figure(prescription)
    if fig is None:
        return ""
    source = png_data_uri(to_png(fig, dpi=DPI))
    return (
        f'<img src="{source}" alt="improvement of each remedy over the baseline" '
        'style="display:block;max-width:100%;margin:6px 0">'
    )


def _trials(prescription: Prescription) -> str:
    columns, rows = _rows(prescription)
    header = "".join(f'<th style="{CELL}">{escape(str(c))}</th>' for c in columns)
    body = [
        f'<tr style="{ROW_STYLES.get(row["cls"], "")}">'
        + "".join(f'<td style="{CELL}">{escape(str(cell))}</td>' for cell in row["cells"])
        + "</tr>"
        for row in rows
    ]
    return (
        '<table style="border-collapse:collapse;margin:6px 0">'
        + f"<tr>{header}</tr>"
        + "".join(body)
        + "</table>"
    )
