"""Findings as console text (rich): the text twin of `finding_html`.

Used by the command line and by integrations that print at the end of a fit (Lightning).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from gradsight.diagnosis.finding import Finding

SEVERITY_STYLES = {"critical": "bold red", "warning": "bold yellow", "info": "bold blue"}


def print_findings(console: Console, findings: Sequence[Finding]) -> None:
    """Each finding: severity, kind, the sentence with its numbers, the layers, the
    mechanism, and the remedies ranked (every text escaped: layer names hold brackets)."""

    def indented(markup: str, style: str = "") -> None:
        # Wrapped by hand so that continuation lines keep the indent (and no trailing padding).
        text = Text.from_markup(markup, style=style)
        for line in text.wrap(console, max(console.width - 2, 20)):
            console.print(Text("  ") + line)

    if not findings:
        console.print("[bold green]no problem found[/]")
        return
    for finding in findings:
        style = SEVERITY_STYLES[finding.severity]
        console.print(
            f"[{style}]{finding.severity.upper()}[/] [bold]{finding.kind}[/]: "
            f"{escape(finding.summary)}"
        )
        if finding.layers:
            indented(f"layers: {escape(', '.join(finding.layers))}", style="dim")
        if finding.explanation:
            indented(escape(finding.explanation))
        for rank, remedy in enumerate(finding.remedies, 1):
            reason = f" ({escape(remedy.reason)})" if remedy.reason else ""
            indented(f"{rank}. [cyan]{remedy.name}[/]: {escape(remedy.description)}{reason}")
        console.print()
