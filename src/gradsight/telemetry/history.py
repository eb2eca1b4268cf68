"""History: the long-format table of everything measured during a run.

Rows are `(step, name, layer, value)`; `name` is `group/stat` (DESIGN.md's metric vocabulary)
and `layer` the module's qualified name ("" for global rows). Rows are kept as columns of
Python lists while training (appending is cheap) and turned into a pandas DataFrame on demand.
With a run directory, `flush()` appends the rows logged since the last flush as one parquet
part, so a run that is killed keeps everything flushed before.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

COLUMNS = ("step", "name", "layer", "value")
SCHEMA = pa.schema(
    [("step", pa.int64()), ("name", pa.string()), ("layer", pa.string()), ("value", pa.float64())]
)
PART_GLOB = "part-*.parquet"


class History:
    """Metrics of one run, in long format.

    Args:
        metrics_dir: Folder for parquet parts (`run_dir/metrics`); None keeps rows in memory only.
    """

    def __init__(self, metrics_dir: str | Path | None = None) -> None:
        self.metrics_dir = Path(metrics_dir) if metrics_dir is not None else None
        self._columns: dict[str, list] = {c: [] for c in COLUMNS}
        self._flushed = 0  # rows already written as parts
        self._frame: pd.DataFrame | None = None

    def __len__(self) -> int:
        return len(self._columns["step"])

    def log(self, step: int, name: str, value: float, layer: str = "") -> None:
        """Append one row."""
        for column, item in zip(COLUMNS, (int(step), name, layer, float(value)), strict=True):
            self._columns[column].append(item)
        self._frame = None

    def log_many(self, step: int, values: dict[str, float], layer: str = "") -> None:
        """Append one row per `name: value` pair, all at the same step and layer."""
        for name, value in values.items():
            self.log(step, name, value, layer)

    def extend(self, rows: Iterable[tuple[int, str, str, float]]) -> None:
        """Append rows given as `(step, name, layer, value)` tuples."""
        for step, name, layer, value in rows:
            self.log(step, name, value, layer)

    @property
    def frame(self) -> pd.DataFrame:
        """All rows as a DataFrame: step, name, layer, value (cached until the next log)."""
        if self._frame is None:
            self._frame = pd.DataFrame(
                {
                    "step": pd.array(self._columns["step"], dtype="int64"),
                    "name": pd.array(self._columns["name"], dtype=object),
                    "layer": pd.array(self._columns["layer"], dtype=object),
                    "value": pd.array(self._columns["value"], dtype="float64"),
                }
            )
        return self._frame

    def names(self) -> list[str]:
        """Metric names present, in first-logged order."""
        return list(dict.fromkeys(self._columns["name"]))

    def layers(self, name: str) -> list[str]:
        """Layers that have rows for metric `name`, in first-logged order."""
        return list(
            dict.fromkeys(
                layer
                for n, layer in zip(self._columns["name"], self._columns["layer"], strict=True)
                if n == name
            )
        )

    def series(self, name: str, layer: str = "") -> pd.Series:
        """Values of one metric for one layer, indexed by step."""
        rows = self.frame[(self.frame["name"] == name) & (self.frame["layer"] == layer)]
        if rows.empty and name not in self.names():
            raise KeyError(f"no metric {name!r} in history; present: {', '.join(self.names())}")
        return pd.Series(rows["value"].to_numpy(), index=rows["step"].to_numpy(), name=name)

    def last(self, name: str, layer: str = "") -> float:
        """The last logged value of one metric."""
        return float(self.series(name, layer).iloc[-1])

    def flush(self) -> Path | None:
        """Write the rows logged since the last flush as the next parquet part.

        Returns:
            The part written, or None when there is no run directory or nothing new.
        """
        if self.metrics_dir is None or len(self) == self._flushed:
            return None
        self.metrics_dir.mkdir(parents=True, exist_ok=True)
        new = {c: values[self._flushed :] for c, values in self._columns.items()}
        part = (
            self.metrics_dir / f"part-{len(list(self.metrics_dir.glob(PART_GLOB))) + 1:06d}.parquet"
        )
        # Written under a temporary name, then renamed: a reader never sees half a part.
        tmp = part.with_suffix(".tmp")
        pq.write_table(pa.table(new, schema=SCHEMA), tmp)
        tmp.replace(part)
        self._flushed = len(self)
        return part

    @classmethod
    def load(cls, path: str | Path) -> History:
        """Read a History from a run directory (or its `metrics/` folder) of parquet parts."""
        path = Path(path)
        metrics_dir = path / "metrics" if (path / "metrics").is_dir() else path
        parts = sorted(metrics_dir.glob(PART_GLOB))
        if not parts:
            raise FileNotFoundError(f"no metrics parts ({PART_GLOB}) in {metrics_dir}")
        history = cls(metrics_dir)
        table = pa.concat_tables(pq.read_table(p, schema=SCHEMA) for p in parts)
        for column in COLUMNS:
            history._columns[column] = table.column(column).to_pylist()
        history._flushed = len(history)
        return history

    def __repr__(self) -> str:
        return f"History({len(self)} rows, names={self.names()})"
