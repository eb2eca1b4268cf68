"""Telemetry: what was measured during training, and where it is kept."""

from gradsight.telemetry.history import History
from gradsight.telemetry.nonfinite import NonFinite
from gradsight.telemetry.run_dir import RunDir, read_run
from gradsight.telemetry.watch import Watch, watch

__all__ = ["History", "NonFinite", "RunDir", "Watch", "read_run", "watch"]
