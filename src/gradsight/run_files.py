"""The names of a run directory's files, in one place.

```
RUN/
  run.json          RUN_JSON: config, seed, versions, timings, status (`run_dir.RunDir`)
  metrics/          METRICS: part-NNNNNN.parquet, appended while training (`History.flush`)
  figures/          FIGURES: the report's PNG files
  findings.json     FINDINGS_JSON: what `gs.diagnose` found (`diagnosis.save_findings`)
  report.html       REPORT_HTML: the report (`gs.report`)
```
"""

RUN_JSON = "run.json"
METRICS = "metrics"
FIGURES = "figures"
FINDINGS_JSON = "findings.json"
REPORT_HTML = "report.html"
