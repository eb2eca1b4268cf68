"""Telemetry: what was measured during training, and where it is kept."""

from gradsight.telemetry.history import History
from gradsight.telemetry.run_dir import RunDir, read_run

__all__ = ["History", "RunDir", "read_run"]
