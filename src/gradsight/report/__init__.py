"""Report: figures of a run (matplotlib, Agg) and one self-contained HTML page (Jinja2).

```python
import gradsight as gs
from gradsight.report import report, figures

report(history, findings, "runs/demo/report.html", run_info=gs.telemetry.read_run("runs/demo"))
figures.save_figures(history, "runs/demo/figures")
```

The report reads only a History and Findings: it can run later, in another process.
"""

from gradsight.report import figures
from gradsight.report.figures import FIGURES, render_figures, save_figures
from gradsight.report.html import Section, report
from gradsight.report.report_path import ReportPath

__all__ = [
    "FIGURES",
    "ReportPath",
    "Section",
    "figures",
    "render_figures",
    "report",
    "save_figures",
]
