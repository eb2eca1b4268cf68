"""History: the long-format table of everything measured during a run.

Rows are `(step, name, layer, value)`; `name` is `group/stat` (`grad/norm`, `act/dead`, ...)
and `layer` the module's qualified name ("" for global rows). Rows are kept as columns of
Python lists while training (appending is cheap) and turned into a pandas DataFrame on demand.
A producer that logs every step may hold its values back as host arrays and turn them into
rows in bulk (`add_row_source`): that happens before any read, count or flush of the rows,
so they are never seen missing; each (name, layer) series stays in step order.

With a metrics folder, `flush()` appends the rows logged since the last flush as one parquet
part and drops them from memory, so memory stays bounded on long runs; `frame()` reads the
parts back. A part is written under a temporary name and linked to its final name when
complete, so a run killed at any moment keeps every flushed part and never shows half a part.
A part is never replaced: each flush takes the next free number at flush time, so two Histories
appending to one metrics folder (a training and a `History.load` of it) add parts side by side.
`load` skips an unreadable or wrongly typed part with one warning naming it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gradsight.errors import InputError
from gradsight.run_files import METRICS, RUN_JSON
from gradsight.stop_signals import stops_deferred
from gradsight.telemetry.history_html import history_html

COLUMNS = ("step", "name", "layer", "value")
SCHEMA = pa.schema(
    [("step", pa.int64()), ("name", pa.string()), ("layer", pa.string()), ("value", pa.float64())]
)
PART_GLOB = "part-*.parquet"
_PART_NUMBER = re.compile(r"part-(\d+)\.parquet")


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
        self._parts = 0  # the highest part number this History wrote or found
        self._skipped: set[Path] = set()  # unreadable parts found by load(), never read
        self._flushed_rows = 0
        self._frame: pd.DataFrame | None = None
        # Row positions of each (name, layer) in the cached frame, in first-logged order.
        self._rows: dict[tuple[str, str], np.ndarray] = {}
        self._tables: dict[str, pd.DataFrame] = {}  # table(name) of the cached frame
        # Objects with write(step, names, layers, values) and close() that receive every group
        # of rows as it is logged (TensorBoard, a Lightning logger): see close_sinks().
        self.sinks: list = []
        self._row_sources: list[Callable[[], None]] = []
        # What is known of the run besides its rows (JSON values): the optimizer
        # ("optimizer": telemetry.optimizer_info.describe_optimizer), the model's layers and
        # what was measured ("layers", "coverage"). Saved in run.json as "meta".
        self.meta: dict[str, Any] = {}

    def __len__(self) -> int:
        self._drain()
        return self._flushed_rows + len(self._columns["step"])

    def add_row_source(self, drain: Callable[[], None]) -> None:
        """Register `drain`, which logs the rows a producer holds back; it runs before the
        rows are read, counted or flushed, and before the sinks close."""
        self._row_sources.append(drain)

    def remove_row_source(self, drain: Callable[[], None]) -> None:
        """Log what `drain` holds and forget it (its producer has stopped)."""
        drain()
        self._row_sources.remove(drain)

    def _drain(self) -> None:
        for drain in self._row_sources:
            drain()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with every held row logged, without the producers (a History sent to
        another process is read there, not written by the watch that made it)."""
        self._drain()
        return self.__dict__ | {"_row_sources": [], "_frame": None, "_rows": {}, "_tables": {}}

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
        columns["step"].extend(repeat(int(step), len(values)))
        columns["name"].extend(names)
        columns["layer"].extend(layers)
        columns["value"].extend(map(float, values))
        self._frame = None
        if self.sinks:
            floats = [float(v) for v in values]
            for sink in self.sinks:
                sink.write(int(step), list(names), list(layers), floats)

    def log_steps(
        self,
        steps: Sequence[int],
        names: Sequence[str],
        layers: Sequence[str],
        values: Sequence[float],
    ) -> None:
        """Append rows of several steps; all four are parallel sequences."""
        columns = self._columns
        columns["step"].extend(map(int, steps))
        columns["name"].extend(names)
        columns["layer"].extend(layers)
        columns["value"].extend(map(float, values))
        self._frame = None
        if self.sinks:
            by_step: dict[int, tuple[list, list, list]] = {}
            for step, name, layer, value in zip(steps, names, layers, values, strict=True):
                group = by_step.setdefault(int(step), ([], [], []))
                group[0].append(name)
                group[1].append(layer)
                group[2].append(float(value))
            for step in sorted(by_step):
                for sink in self.sinks:
                    sink.write(step, *by_step[step])

    def close_sinks(self) -> None:
        """Close every sink (each at most once)."""
        self._drain()
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
        self._drain()
        if self._frame is None:
            tables = [_read_part(p) for p in self._part_files() if p not in self._skipped]
            tables.append(pa.table(self._columns, schema=SCHEMA))
            frame = pa.concat_tables(tables).to_pandas()
            frame["name"] = frame["name"].astype(object)
            frame["layer"] = frame["layer"].astype(object)
            self._frame = frame
            self._rows = frame.groupby(["name", "layer"], sort=False).indices if len(frame) else {}
            self._tables = {}
        return self._frame

    def _positions(self, name: str) -> np.ndarray:
        """Row positions of metric `name` (every layer) in the cached frame, ascending."""
        parts = [rows for (n, _), rows in self._rows.items() if n == name]
        return np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.intp)

    def names(self) -> list[str]:
        """Metric names present, in first-logged order."""
        self.frame()
        return list(dict.fromkeys(name for name, _ in self._rows))

    def __contains__(self, name: object) -> bool:
        """Whether metric `name` has rows: `"grad/norm" in history`."""
        return name in self.names()

    def layers(self, name: str) -> list[str]:
        """Layers that have rows for metric `name`, in first-logged order."""
        self.frame()
        return [layer for n, layer in self._rows if n == name]

    def series(self, name: str, layer: str = "") -> pd.Series:
        """Values of one metric for one layer, indexed by step."""
        frame = self.frame()
        rows = self._rows.get((name, layer))
        if rows is None:
            if name not in self.names():
                present = ", ".join(self.names())
                raise KeyError(f"no metric {name!r} in history; present: {present}")
            rows = np.empty(0, dtype=np.intp)
        values, steps = frame["value"].to_numpy()[rows], frame["step"].to_numpy()[rows]
        return pd.Series(values, index=steps, name=name)

    def table(self, name: str) -> pd.DataFrame:
        """One metric as a wide table: one row per step, one column per layer (the mean of
        rows logged twice at one step). A copy of a table cached until the next row is logged.
        """
        frame = self.frame()  # first: held rows are logged, a new frame empties the cache
        if name not in self._tables:
            rows = frame.iloc[self._positions(name)]
            self._tables[name] = rows.pivot_table(
                index="step", columns="layer", values="value", sort=False
            )
        return self._tables[name].copy()

    def last(self, name: str, layer: str = "") -> float:
        """The last logged value of one metric."""
        return float(self.series(name, layer).iloc[-1])

    def flush(self) -> Path | None:
        """Write the rows logged since the last flush as the next free parquet part.

        The rows are written to a temporary file of a unique name, which is then hard-linked
        (`os.link`, an exclusive create: it fails rather than replace a file) as
        `part-NNNNNN.parquet`, NNNNNN one past the highest part present now; if another writer
        took that number meanwhile, the next one is tried. Hence no lock is needed: parts are
        an append-only set, every row carries its own step, and two writers on one folder can
        only add parts, never overwrite each other's.

        Returns:
            The part written, or None when there is no metrics folder or nothing new.
        """
        self._drain()
        if self.metrics_dir is None or not self._columns["step"]:
            return None
        # A stop half-way would leave the temporary file, or a part whose rows the next flush
        # writes again: it is delivered once the part and its bookkeeping are done.
        with stops_deferred():
            return self._write_part(self.metrics_dir)

    def _write_part(self, metrics_dir: Path) -> Path:
        metrics_dir.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=".part-", suffix=".tmp", dir=metrics_dir)
        os.close(handle)
        tmp = Path(name)
        try:
            pq.write_table(pa.table(self._columns, schema=SCHEMA), tmp)
            number = max(self._parts, _highest_part(metrics_dir))
            while True:
                number += 1
                part = metrics_dir / f"part-{number:06d}.parquet"
                try:
                    _claim(tmp, part)
                    break
                except FileExistsError:
                    continue
        finally:
            tmp.unlink(missing_ok=True)
        self._parts = number
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

        Only complete parts are read; the History can be appended to and flushed further (its
        parts take the next free numbers, see `flush`). A part that cannot be read (truncated,
        empty, not parquet) or whose columns are not step int64, name string, layer string,
        value float64 is skipped, with one warning naming every skipped file.

        Raises:
            FileNotFoundError: No parts at all.
            ValueError: Parts, but none readable.
        """
        path = Path(path)
        metrics_dir = path / METRICS if (path / METRICS).is_dir() else path
        history = cls(metrics_dir)
        parts = history._part_files()
        if not parts:
            raise FileNotFoundError(f"no metrics parts ({PART_GLOB}) in {metrics_dir}")
        rows, problems = {}, {}
        for part in parts:
            try:
                rows[part] = _part_rows(part)
            except ValueError as error:
                problems[part] = str(error)
        listed = "; ".join(f"{part.name}: {problem}" for part, problem in problems.items())
        if not rows:
            raise InputError(f"no readable metrics parts in {metrics_dir} ({listed})")
        if problems:
            warnings.warn(
                f"skipped {len(problems)} unreadable metrics part(s) in {metrics_dir}: {listed}",
                stacklevel=2,
            )
        history._skipped = set(problems)
        history._parts = _highest_part(metrics_dir)
        run_json = metrics_dir.parent / RUN_JSON
        if run_json.is_file():
            try:
                meta = json.loads(run_json.read_text()).get("meta")
            except (OSError, ValueError, AttributeError):
                meta = None  # an unreadable run.json costs the metadata, not the metrics
            history.meta = meta if isinstance(meta, dict) else {}
        history._flushed_rows = sum(rows.values())
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


def _highest_part(metrics_dir: Path) -> int:
    """The highest part number in `metrics_dir` (readable or not), 0 when there is none."""
    numbers = [_PART_NUMBER.fullmatch(p.name) for p in metrics_dir.glob(PART_GLOB)]
    return max((int(m.group(1)) for m in numbers if m), default=0)


def _claim(tmp: Path, part: Path) -> None:
    """Give the complete file `tmp` the name `part`, raising FileExistsError if taken."""
    try:
        os.link(tmp, part)
    except FileExistsError:
        raise
    except OSError:
        # No hard links here (some network or FUSE filesystems): reserve the name with an
        # exclusive create, then move the complete file over the empty reservation.
        os.close(os.open(part, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        os.replace(tmp, part)


def _part_rows(part: Path) -> int:
    """The number of rows of a part, after checking its footer and column types.

    Raises:
        InputError: The part is not readable parquet or its columns are not SCHEMA's.
    """
    try:
        metadata = pq.read_metadata(part)
        schema = metadata.schema.to_arrow_schema()
    except (OSError, pa.ArrowException) as error:
        raise InputError(f"not a readable parquet file ({error})") from None
    found = {field.name: field.type for field in schema}
    wanted = {field.name: field.type for field in SCHEMA}
    if found != wanted:
        shown = ", ".join(f"{name} {kind}" for name, kind in found.items())
        raise InputError(
            f"columns {shown or 'none'}; expected step int64, name string, "
            "layer string, value double"
        )
    return metadata.num_rows


def _read_part(part: Path) -> pa.Table:
    """A part's rows, or a ValueError naming the part."""
    try:
        return pq.read_table(part, schema=SCHEMA)
    except (OSError, pa.ArrowException) as error:
        raise InputError(f"{part}: unreadable metrics part ({error})") from None
