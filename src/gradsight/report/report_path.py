"""`ReportPath`: the path `gs.report` returns, which a notebook shows as the report itself.

It is a `pathlib.Path` (reading, comparing, joining work as before); its `_repr_html_` puts the
self-contained page in a sandboxed iframe through `srcdoc`, the whole page escaped as one
attribute value (so nothing in it can close the attribute or run in the notebook).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

# The iframe's height in pixels: about one screen; the page scrolls inside it.
HEIGHT = 640
# Pages larger than this are linked, not embedded (the notebook file would carry them).
MAX_INLINE_BYTES = 20_000_000


class ReportPath(type(Path())):  # PosixPath or WindowsPath: Path cannot be subclassed before 3.12
    """The report's path; displayed in a notebook as the report page in an iframe."""

    def _repr_html_(self) -> str | None:
        """The page in a sandboxed iframe under its path; None when the file cannot be read."""
        try:
            size = self.stat().st_size
            page = self.read_text(encoding="utf-8") if size <= MAX_INLINE_BYTES else None
        except OSError:
            return None  # not a file (a parent folder of the report, a deleted page)
        caption = f'<p style="margin:0 0 4px">Report: <code>{escape(str(self))}</code>'
        if page is None:
            return caption + f" ({size / 1e6:.0f} MB: open the file to see it)</p>"
        # sandbox="" (no permission at all): the page has no script, and none may run.
        return (
            f"{caption}</p>\n"
            f'<iframe srcdoc="{escape(page, quote=True)}" sandbox="" title="gradsight report" '
            f'style="width:100%;height:{HEIGHT}px;border:1px solid #d5d9e0;border-radius:6px">'
            "</iframe>"
        )
