"""History: the long-format table of everything measured during a run.

Rows are `(step, name, layer, value)`; `name` is `group/stat` (`grad/norm`, `act/dead`, ...)
and `layer` the module's qualified name ("" for global rows). Rows are kept as columns of
Python lists while training (appending is cheap) and turned into a pandas DataFrame on demand.

With a metrics folder, `flush()` appends the rows logged since the last flush as one parquet
part and drops them from memory, so memory stays bounded on long runs; `frame()` reads the
parts back. A part is written under a temporary name and renamed when complete, so a run
killed at any moment keeps every flushed part and never shows half a part.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gradsight.telemetry.history_html import history_html

COLUMNS = ("step", "name", "layer", "value")
SCHEMA = pa.schema(
    [("step", pa.int64()), ("name", pa.string()), ("layer", pa.string()), ("value", pa.float64())]
)
PART_GLOB = "part-*.parquet"


def _empty_columns() -> dict[str, list]:
    return {c: [] for c in COLUMNS}


class History:
    """Metrics of one run, in long format.

    Args:
        metrics_dir: Folder for parquet parts (`run_dir/metrics`); None keeps rows in memory.
    """

    def __init__(self, metrics_dir: str | Path | None = None) -> None:
        self.metrics_dir = Path(metrics_dir) if metrics_dir is not None else None
        self._columns = _empty_columns()  # rows not yet flushed
        self._parts = 0  # parts written or found in metrics_dir
        self._flushed_rows = 0
        self._frame: pd.DataFrame | None = None
        # Objects with write(step, names, layers, values) and close() that receive every group
        # of rows as it is logged (TensorBoard, a Lightning logger): see close_sinks().
        self.sinks: list = []
        # What is known of the run besides its rows (JSON values): the optimizer
        # ("optimizer": telemetry.optimizer_info.describe_optimizer), the model's layers and
        # what was measured ("layers", "coverage"). Saved in run.json as "meta".
        self.meta: dict[str, Any] = {}

    def __len__(self) -> int:
        return self._flushed_rows + len(self._columns["step"])

    def log(self, step: int, name: str, value: float, layer: str = "") -> None:
        """Append one row."""
        self.log_rows(step, [name], [layer], [value])

    def log_many(self, step: int, values: dict[str, float], layer: str = "") -> None:
        """Append one row per `name: value` pair, all at the same step and layer."""
        self.log_rows(step, list(values), [layer] * len(values), list(values.values()))

    def log_rows(
        self, step: int, names: Sequence[str], layers: Sequence[str], values: Sequence[float]
    ) -> None:
        """Append rows that share a step; names, layers and values are parallel sequences."""
        columns = self._columns
        columns["step"].extend([int(step)] * len(values))
        columns["name"].extend(names)
        columns["layer"].extend(layers)
        columns["value"].extend(float(v) for v in values)
        self._frame = None
        if self.sinks:
            floats = [float(v) for v in values]
            for sink in self.sinks:
                sink.write(int(step), list(names), list(layers), floats)

    def close_sinks(self) -> None:
        """Close every sink (each at most once)."""
        sinks, self.sinks = self.sinks, []
        for sink in sinks:
            sink.close()

    def extend(self, rows: Iterable[tuple[int, str, str, float]]) -> None:
        """Append rows given as `(step, name, layer, value)` tuples."""
        for step, name, layer, value in rows:
            self.log(step, name, value, layer)

    def frame(self) -> pd.DataFrame:
        """All rows (flushed parts, then rows in memory) as a DataFrame: step, name, layer, value.

        Cached until the next row is logged.
        """
        if self._frame is None:
            tables = [pq.read_table(p, schema=SCHEMA) for p in self._part_files()]
            tables.append(pa.table(self._columns, schema=SCHEMA))
            frame = pa.concat_tables(tables).to_pandas()
            frame["name"] = frame["name"].astype(object)
            frame["layer"] = frame["layer"].astype(object)
            self._frame = frame
        return self._frame

    def names(self) -> list[str]:
        """Metric names present, in first-logged order."""
        return list(dict.fromkeys(self.frame()["name"]))

    def layers(self, name: str) -> list[str]:
        """Layers that have rows for metric `name`, in first-logged order."""
        frame = self.frame()
        return list(dict.fromkeys(frame.loc[frame["name"] == name, "layer"]))

    def series(self, name: str, layer: str = "") -> pd.Series:
        """Values of one metric for one layer, indexed by step."""
        frame = self.frame()
        rows = frame[(frame["name"] == name) & (frame["layer"] == layer)]
        if rows.empty and name not in self.names():
            raise KeyError(f"no metric {name!r} in history; present: {', '.join(self.names())}")
        return pd.Series(rows["value"].to_numpy(), index=rows["step"].to_numpy(), name=name)

    def table(self, name: str) -> pd.DataFrame:
        """One metric as a wide table: one row per step, one column per layer."""
        frame = self.frame()
        rows = frame[frame["name"] == name]
        return rows.pivot_table(index="step", columns="layer", values="value", sort=False)

    def last(self, name: str, layer: str = "") -> float:
        """The last logged value of one metric."""
        return float(self.series(name, layer).iloc[-1])

    def flush(self) -> Path | None:
        """Write the rows logged since the last flush as the next parquet part.

        Returns:
            The part written, or None when there is no metrics folder or nothing new.
        """
        if self.metrics_dir is None or not self._columns["step"]:
            return None
        self.metrics_dir.mkdir(parents=True, exist_ok=True)
        self._parts += 1
        part = self.metrics_dir / f"part-{self._parts:06d}.parquet"
        tmp = part.with_name(part.name + ".tmp")
        pq.write_table(pa.table(self._columns, schema=SCHEMA), tmp)
        tmp.replace(part)
        self._flushed_rows += len(self._columns["step"])
        self._columns = _empty_columns()
        return part

    def save(self, path: str | Path) -> Path:
        """Write every row as one parquet part in `path` (a run directory's `metrics/` folder).

        Returns:
            The part written.
        """
        target = Path(path)
        target.mkdir(parents=True, exist_ok=True)
        if any(target.glob(PART_GLOB)):
            raise FileExistsError(f"{target} already holds metrics parts")
        file = target / "part-000001.parquet"
        pq.write_table(
            pa.Table.from_pandas(self.frame(), schema=SCHEMA, preserve_index=False), file
        )
        return file

    @classmethod
    def load(cls, path: str | Path) -> History:
        """A History over the parquet parts of a run directory (or of its `metrics/` folder).

        Only complete parts are read; the History can be appended to and flushed further.
        """
        path = Path(path)
        metrics_dir = path / "metrics" if (path / "metrics").is_dir() else path
        history = cls(metrics_dir)
        parts = history._part_files()
        if not parts:
            raise FileNotFoundError(f"no metrics parts ({PART_GLOB}) in {metrics_dir}")
        history._parts = int(parts[-1].stem.removeprefix("part-"))
        run_json = metrics_dir.parent / "run.json"
        if run_json.is_file():
            try:
                meta = json.loads(run_json.read_text()).get("meta")
            except (OSError, ValueError, AttributeError):
                meta = None  # an unreadable run.json costs the metadata, not the metrics
            history.meta = meta if isinstance(meta, dict) else {}
        history._flushed_rows = sum(pq.read_metadata(p).num_rows for p in parts)
        return history

    def _part_files(self) -> list[Path]:
        if self.metrics_dir is None or not self.metrics_dir.is_dir():
            return []
        return sorted(self.metrics_dir.glob(PART_GLOB))

    def __repr__(self) -> str:
        return f"History({len(self)} rows)"

    def _repr_html_(self) -> str:
        """The notebook display: steps, layers, statistics and a gradient-flow figure."""
        return history_html(self)
