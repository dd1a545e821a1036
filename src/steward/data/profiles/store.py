"""Profile series: time-bucketed profiles of frames and prediction events, stored as Parquet.

``profile_frame`` profiles each column of a frame per time bucket (a ``ProfileRow`` per bucket and
column), ``build_profiles`` does so incrementally for the prediction log behind a watermark, and
``ProfileStore`` keeps the rows as Parquet and reads a window back merged into a
``steward.data.profiles.DatasetProfile``. The profiles themselves, their binnings and their merge are in
``steward.data.profiles``, which re-exports every name of this module. ``docs/profiles.md`` explains the
watermark, late events and the storage layout.

Example::

    >>> import pandas as pd
    >>> from steward.data.profiles import Binning
    >>> frame = pd.DataFrame({
    ...     "event_time": pd.to_datetime(["2026-01-01 00:10", "2026-01-01 00:50"], utc=True),
    ...     "amount": [1.0, 3.0]})
    >>> [row.profile.mean for row in profile_frame(frame, {"amount": Binning().fit([0.0, 4.0])})]
    [2.0]
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from steward._util.frames import to_arrow_table
from steward.data.profiles.binning import Binning, check_columns_present
from steward.data.profiles.column import (
    SKETCH_FIELDS,
    SKETCH_TYPES,
    ColumnProfile,
    merge_profiles,
    profile_columns,
)
from steward.data.profiles.dataset import DatasetProfile
from steward.data.profiles.rollup import (
    DAILY_DIRECTORY,
    RolledWindow,
    hourly_name,
    month_bounds,
    months_to_roll,
    rolled_window,
    save_month,
)
from steward.errors import InvalidInputError, StoreError

__all__ = [
    "LATENESS_COLUMN",
    "OUTPUT_COLUMNS",
    "ProfileRow",
    "ProfileStore",
    "build_profiles",
    "profile_frame",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Prediction-event columns profiled by name; an input of the same name is ``"inputs.<name>"``.
#: ``lateness_seconds`` is derived: ``received_at`` minus ``event_time``, in seconds.
OUTPUT_COLUMNS: Final = ("score", "decision", "lateness_seconds")
LATENESS_COLUMN: Final = "lateness_seconds"
_DERIVED: Final = {
    LATENESS_COLUMN: '(epoch_us("received_at") - epoch_us("event_time")) / 1e6',
}

_TIMESTAMP: Final = pa.timestamp("us", tz="UTC")
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECONDS: Final = {"s": 1_000_000, "ms": 1_000, "us": 1}
_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


# --- profiling frames ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileRow:
    """The profile of one column over one time bucket (and one model version, when grouped).

    >>> profile = ColumnProfile.from_values([1.0], Binning().fit([0.0, 2.0]))
    >>> ProfileRow(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "amount", profile).model_version is None
    True
    """

    bucket_start: dt.datetime
    column: str
    profile: ColumnProfile
    model_version: int | None = None


def profile_frame(
    frame: object,
    binnings: Mapping[str, Binning],
    *,
    bucket: str | dt.timedelta = "1h",
    time_column: str = "event_time",
    violations: Mapping[str, npt.ArrayLike] | None = None,
    model_version_column: str | None = None,
) -> list[ProfileRow]:
    """Profile each binned column of a frame per time bucket (and per model version if named).

    Buckets are fixed durations (``"1h"``, ``"15min"``, ``"1D"``) aligned to the Unix epoch in
    UTC; naive timestamps are read as UTC. ``violations`` maps a column to one count per row of the
    contract violations on it. Work is vectorized per column; only buckets loop in Python.

    >>> import pandas as pd
    >>> frame = pd.DataFrame({
    ...     "event_time": pd.to_datetime(["2026-01-01 00:10", "2026-01-01 01:20"], utc=True),
    ...     "amount": [1.0, 2.0]})
    >>> rows = profile_frame(frame, {"amount": Binning().fit([1.0, 2.0])})
    >>> [(row.bucket_start.hour, row.profile.count) for row in rows]
    [(0, 1), (1, 1)]
    """
    table = to_arrow_table(frame)
    extra = [name for name in (time_column, model_version_column) if name is not None]
    check_columns_present(table, [*binnings, *extra])
    starts = _bucket_starts(table.column(time_column), _bucket_micros(bucket), time_column)
    versions = None if model_version_column is None else table.column(model_version_column)
    order, groups, keys = _group_rows(starts, versions)

    def row_violations(name: str) -> FloatArray:
        per_row = _row_violations(violations, name, table.num_rows)
        return per_row if order is None else per_row[order]

    profiled = profile_columns(table, binnings, groups, len(keys), row_violations, order)
    return [
        ProfileRow(start, name, profile, version)
        for name, profiles in profiled.items()
        for (start, version), profile in zip(keys, profiles, strict=True)
    ]


def _bucket_micros(bucket: str | dt.timedelta) -> int:
    try:
        nanoseconds = pd.Timedelta(bucket).value
    except (TypeError, ValueError) as error:
        raise InvalidInputError(
            f"bucket {bucket!r} is not a fixed duration ({error}); pass e.g. '1h', '15min' or '1D'"
        ) from error
    if nanoseconds <= 0 or nanoseconds % 1_000:
        raise InvalidInputError(
            f"bucket {bucket!r} must be a positive whole number of microseconds; pass e.g. '1h'"
        )
    return int(nanoseconds // 1_000)


def _bucket_starts(column: pa.ChunkedArray, width: int, name: str) -> IntArray:
    """Each row's bucket start in microseconds since the epoch (UTC)."""
    if not pa.types.is_timestamp(column.type) or column.null_count:
        raise InvalidInputError(
            f"time column {name!r} holds {column.type} with {column.null_count} missing values; "
            "it needs timestamps on every row (timezone-aware, or naive in UTC)"
        )
    raw = column.cast(pa.int64()).to_numpy().astype(np.int64)
    micros = raw // 1_000 if column.type.unit == "ns" else raw * _MICROSECONDS[column.type.unit]
    return micros - micros % width


def _group_rows(
    starts: IntArray, versions: pa.ChunkedArray | None
) -> tuple[IntArray | None, IntArray, list[tuple[dt.datetime, int | None]]]:
    """The row order that sorts rows by group (None when they already are, as an event log's rows
    in time order are), the sorted group codes, and each group's key."""
    bucket_keys, bucket_codes = np.unique(starts, return_inverse=True)
    version_keys: list[int | None] = [None]
    combined = bucket_codes.astype(np.int64)
    if versions is not None:
        encoded = pc.dictionary_encode(versions.combine_chunks())
        version_keys = [*encoded.dictionary.to_pylist(), None]
        codes = encoded.indices.fill_null(len(version_keys) - 1).to_numpy().astype(np.int64)
        combined = combined * len(version_keys) + codes
    group_keys, groups = np.unique(combined, return_inverse=True)
    groups = groups.astype(np.int64)
    order: IntArray | None = None
    if groups.size > 1 and bool(np.any(groups[1:] < groups[:-1])):
        order = np.argsort(groups, kind="stable")
        groups = groups[order]
    keys = [
        (
            _EPOCH + dt.timedelta(microseconds=int(bucket_keys[key // len(version_keys)])),
            version_keys[key % len(version_keys)],
        )
        for key in group_keys.tolist()
    ]
    return order, groups, keys


def _row_violations(
    violations: Mapping[str, npt.ArrayLike] | None, name: str, n_rows: int
) -> FloatArray:
    if violations is None or name not in violations:
        return np.zeros(n_rows, dtype=np.float64)
    counts = np.asarray(violations[name], dtype=np.float64)
    if counts.shape != (n_rows,) or not np.all(np.isfinite(counts) & (counts >= 0)):
        raise InvalidInputError(
            f"violations[{name!r}] must hold one count >= 0 per row ({n_rows} rows), got shape "
            f"{counts.shape}; pass 0 for rows without violations"
        )
    return counts


# --- incremental builds from the prediction log ----------------------------------------------------


def build_profiles(
    events: object,
    binnings: Mapping[str, Binning],
    watermark: dt.datetime | None,
    *,
    bucket: str | dt.timedelta = "1h",
    until: dt.datetime | None = None,
) -> tuple[list[ProfileRow], dt.datetime | None]:
    """Profile the prediction events received after ``watermark``; return the rows and the new
    watermark.

    ``events`` has the columns of ``steward.data.events.PREDICTION_SCHEMA`` (as ``EventLog.scan``
    returns them). Only events with ``watermark < received_at`` (and ``received_at <= until``,
    when given) are profiled, so a re-run adds each event once. Binning names are JSON keys of
    ``inputs``, except ``score`` and ``decision`` (the event columns; an input of that name is
    ``"inputs.score"``). A late event lands in its own (old) bucket as an extra partial row, which
    the merge on read absorbs. Rows are grouped per model version.

    >>> import datetime as dt, json, pyarrow as pa
    >>> moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> events = pa.table({"event_time": [moment], "received_at": [moment], "model_version": [1],
    ...                    "inputs": [json.dumps({"amount": 2.0})], "score": [0.7]})
    >>> binnings = {"amount": Binning().fit([1.0, 3.0]), "score": Binning().fit([0.0, 1.0])}
    >>> rows, watermark = build_profiles(events, binnings, None)
    >>> [(row.column, row.profile.mean) for row in rows], watermark == moment
    ([('amount', 2.0), ('score', 0.7)], True)
    """
    table = to_arrow_table(events)
    check_columns_present(table, ["event_time", "received_at"])
    received = table.column("received_at")
    keep = pc.is_valid(received)
    if watermark is not None:
        keep = pc.and_(keep, pc.greater(received, _timestamp_scalar(watermark, "watermark")))
    if until is not None:
        keep = pc.and_(keep, pc.less_equal(received, _timestamp_scalar(until, "until")))
    fresh = table.filter(keep)
    if fresh.num_rows == 0:
        return [], max(filter(None, [watermark, until]), default=None)
    new_watermark = until or pc.max(fresh.column("received_at")).as_py()
    decoded, violations = _decode_events(fresh, binnings)
    versions = "model_version" if "model_version" in decoded.column_names else None
    rows = profile_frame(
        decoded, binnings, bucket=bucket, violations=violations, model_version_column=versions
    )
    return rows, new_watermark


def _timestamp_scalar(moment: dt.datetime, what: str) -> pa.Scalar:
    if not isinstance(moment, dt.datetime) or moment.tzinfo is None:
        raise InvalidInputError(
            f"{what}={moment!r} must be a timezone-aware datetime; pass e.g. "
            "datetime(2026, 1, 1, tzinfo=timezone.utc)"
        )
    return pa.scalar(moment, type=_TIMESTAMP)


def _decode_events(
    table: pa.Table, binnings: Mapping[str, Binning]
) -> tuple[pa.Table, dict[str, FloatArray]]:
    """Decode the JSON ``inputs`` and flag, per input column, the rows whose ``violations`` name
    it, in one DuckDB pass (text that is not valid JSON, or a value of the wrong type, is null)."""
    for binning in binnings.values():
        binning.check_fitted()
    keys = {
        name: name.removeprefix("inputs.")
        for name in binnings
        if name not in OUTPUT_COLUMNS or name.startswith("inputs.")
    }
    check_columns_present(table, ["inputs"] if keys else [])
    present = set(table.column_names)
    selected = ['"event_time"'] + ['"model_version"'] * ("model_version" in present)
    selected += [
        f"{_DERIVED[name]} AS {_identifier(name)}" if name in _DERIVED else _identifier(name)
        for name in binnings
        if name not in keys
    ]
    subquery = "SELECT *"
    if keys:
        structure = {
            key: "DOUBLE" if binnings[name].kind_ == "numeric" else "VARCHAR"
            for name, key in keys.items()
        }
        selected += [
            f"inputs_.{_identifier(key)} AS {_identifier(name)}" for name, key in keys.items()
        ]
        subquery += (
            ", CASE WHEN json_valid(inputs) THEN "
            f"from_json(inputs, {_literal(json.dumps(structure))}) END AS inputs_"
        )
    flagged = list(keys.items()) if "violations" in present else []
    if flagged:
        subquery += (
            ", CASE WHEN json_valid(violations) THEN "
            "json_extract_string(violations, '$[*].column') END AS broken_"
        )
        selected += [
            f'coalesce(list_contains(broken_, {_literal(key)}), false)::DOUBLE AS "broken_{index}"'
            for index, (_, key) in enumerate(flagged)
        ]
    sql = f"SELECT {', '.join(selected)} FROM ({subquery} FROM events)"
    with duckdb.connect() as connection:
        connection.execute("SET TimeZone = 'UTC'")
        connection.register("events", table)
        try:
            decoded = _fetch(connection.sql(sql))
        except duckdb.Error as error:
            raise InvalidInputError(
                f"could not decode the events ({error}); pass events with the columns of "
                "steward.data.events.PREDICTION_SCHEMA"
            ) from error
    flags = {
        name: decoded.column(f"broken_{index}").to_numpy()
        for index, (name, _) in enumerate(flagged)
    }
    return decoded, flags


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _fetch(relation: duckdb.DuckDBPyRelation) -> pa.Table:
    # duckdb 1.x returns a Table from arrow(); 2.x a reader, with to_arrow_table() for a Table.
    fetch = getattr(relation, "to_arrow_table", None)
    result = fetch() if fetch is not None else relation.arrow()
    return result if isinstance(result, pa.Table) else result.read_all()


# --- storage ---------------------------------------------------------------------------------------


class ProfileStore:
    """Profile rows as Parquet under ``root/system=<name>/``, one file per write, read with DuckDB.

    Each file holds ``bucket_start``, ``column``, ``model_version``, ``binning`` (its JSON), one
    typed column per profile field (``count``, ``null_count``, ..., ``bin_counts`` as a list, the
    sketch as binary), so SQL engines read counts without decoding anything, and the ``watermark``
    of the build that wrote it. The rename that publishes a file publishes its rows and its
    watermark together, so a crashed build is either wholly in the store or wholly redone.

    >>> import tempfile, pandas as pd
    >>> start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> frame = pd.DataFrame({"event_time": [start], "amount": [2.0]})
    >>> rows = profile_frame(frame, {"amount": Binning().fit([1.0, 3.0])})
    >>> store = ProfileStore(tempfile.mkdtemp())
    >>> _ = store.write("churn", rows, watermark=start)
    >>> store.read("churn", start, start + dt.timedelta(days=1))["amount"].mean
    2.0
    >>> store.watermark("churn") == start
    True
    >>> store.refresh(event_log, "churn", binnings)  # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def write(
        self, system: str, rows: Sequence[ProfileRow], *, watermark: dt.datetime | None = None
    ) -> Path | None:
        """Write rows as one new Parquet file; nothing (and None) when there are no rows."""
        directory = self._directory(system)
        if not rows:
            if watermark is not None:
                self.roll_up(system, watermark)
            return None
        days = sorted({row.bucket_start.astimezone(dt.UTC).date() for row in rows})
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self._publish(directory, hourly_name(stamp, days), _table_of(rows, watermark))
        if watermark is not None:
            self.roll_up(system, watermark)
        return path

    def roll_up(self, system: str, watermark: dt.datetime) -> int:
        """Merge the hourly rows of every day closed by ``watermark`` (a day that ended at or
        before it) into daily rows, for the months whose rollup is missing or out of date (see
        ``steward.data.profiles.rollup``); return the months rolled. ``write`` calls this."""
        directory = self._directory(system)
        closed_before = _timestamp_scalar(watermark, "watermark").as_py().astimezone(dt.UTC).date()
        if not directory.is_dir():
            return 0
        wanted = months_to_roll(directory, closed_before)
        for month, names in sorted(wanted.items()):
            start, end = month_bounds(month, closed_before)
            hourly = self._read_files([directory / name for name in names], start, end)
            merged = _merged_by_day(hourly)
            written = None
            if merged:
                token = secrets.token_hex(4)
                folder = directory / DAILY_DIRECTORY
                folder.mkdir(exist_ok=True)
                written = self._publish(
                    folder, f"month-{month}-{token}.parquet", _table_of(merged, watermark)
                )
            days = [row.bucket_start.date() for row in merged]
            save_month(directory, month, written, days, names, closed_before)
        return len(wanted)

    @staticmethod
    def _publish(directory: Path, name: str, table: pa.Table) -> Path:
        """Write ``table`` as ``directory/name`` durably: a temporary file, fsync, rename."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / name
        temporary = directory / f".{path.name}.tmp"
        with open(temporary, "wb") as file:
            pq.write_table(table, file, compression="zstd")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        return path

    def _read_files(
        self, files: Sequence[Path], start: dt.datetime, end: dt.datetime
    ) -> list[ProfileRow]:
        """The rows of some of a system's Parquet files with ``start <= bucket_start < end``."""
        listed = ", ".join(_literal(str(path)) for path in files)
        sql = (
            "SELECT epoch_us(bucket_start) AS bucket_start, * EXCLUDE (bucket_start, watermark) "
            f"FROM read_parquet([{listed}], union_by_name = true) "
            "WHERE bucket_start >= $start AND bucket_start < $end "
            'ORDER BY bucket_start, "column", model_version'
        )
        return _rows_from_table(self._run(sql, {"start": start, "end": end}))

    def watermark(self, system: str) -> dt.datetime | None:
        """The latest watermark written for a system, or None before its first build."""
        if not self._has_files(system):
            return None
        result = self._query(
            "SELECT max(watermark) AS w FROM {files} WHERE system = $system", {"system": system}
        )
        value: dt.datetime | None = result.column("w")[0].as_py()
        return value

    def read_rows(
        self,
        system: str,
        start: dt.datetime,
        end: dt.datetime,
        *,
        columns: Sequence[str] | None = None,
        daily: bool = False,
    ) -> list[ProfileRow]:
        """Stored rows with ``start <= bucket_start < end``, unmerged (a bucket may have several).

        With ``daily``, the whole days of the window that are rolled up (and up to date) come as
        one row per day, column and model version, whose merge equals the merge of that day's
        hourly rows (``steward.data.profiles.rollup``); the rest come hourly as stored.
        """
        _timestamp_scalar(start, "start")  # both raise unless timezone-aware
        _timestamp_scalar(end, "end")
        if not self._has_files(system):
            return []
        rolled = self.rolled_window(system, start, end) if daily else RolledWindow([], [])
        # Every stored column but the times: files written before a field existed lack it (read
        # by name across files, it is then null, or absent when no file has it).
        sql = (
            "SELECT epoch_us(bucket_start) AS bucket_start, "
            "* EXCLUDE (bucket_start, watermark, system) FROM {files} "
            "WHERE system = $system AND bucket_start >= $start AND bucket_start < $end"
        )
        parameters: dict[str, Any] = {"system": system, "start": start, "end": end}
        if columns is not None:
            sql += ' AND list_contains($columns, "column")'
            parameters["columns"] = list(columns)
        if rolled.runs:
            sql += f" AND NOT ({_runs_sql(rolled.runs)})"
            listed = ", ".join(_literal(str(path)) for path in rolled.files)
            sql = (
                f"SELECT * FROM ({sql}) UNION ALL BY NAME SELECT epoch_us(bucket_start) AS "
                "bucket_start, * EXCLUDE (bucket_start, watermark) FROM "
                f"read_parquet([{listed}], union_by_name = true) WHERE ({_runs_sql(rolled.runs)})"
                + (' AND list_contains($columns, "column")' if columns is not None else "")
            )
        table = self._query(sql + ' ORDER BY bucket_start, "column", model_version', parameters)
        return _rows_from_table(table)

    def rolled_window(self, system: str, start: dt.datetime, end: dt.datetime) -> RolledWindow:
        """The daily rollup files and the runs of whole days of ``[start, end)`` they answer."""
        return rolled_window(self._directory(system), start, end)

    def hourly_files(self, system: str) -> list[Path]:
        """The system's hourly profile files (every build writes one)."""
        return sorted(self._directory(system).glob("*.parquet"))

    def read(
        self,
        system: str,
        start: dt.datetime,
        end: dt.datetime,
        *,
        columns: Sequence[str] | None = None,
        model_versions: Iterable[int | None] | None = None,
    ) -> DatasetProfile:
        """The window ``[start, end)`` merged per column (optionally for some model versions).

        A bucket belongs to the window when its start does; align ``start`` and ``end`` to the
        bucket width to read whole buckets only.
        """
        rows = self.read_rows(system, start, end, columns=columns, daily=True)
        return DatasetProfile.from_rows(rows, model_versions=model_versions)

    def refresh(
        self,
        log: Any,
        system: str,
        binnings: Mapping[str, Binning],
        *,
        bucket: str | dt.timedelta = "1h",
        settle: dt.timedelta = dt.timedelta(seconds=30),
        now: dt.datetime | None = None,
    ) -> int:
        """Profile a system's predictions received since the stored watermark; return rows written.

        ``log`` is a ``steward.data.events.EventLog``. Events received in the last ``settle`` are left
        for the next run: replicas stamp ``received_at`` with their own clocks and acknowledge in
        their own time, so the newest stamps may still be joined by slightly older ones. ``now``
        replaces the clock; never pass a time ahead of the writers' clocks, or the events they
        stamp before it are skipped for good.
        """
        watermark = self.watermark(system)
        until = (now or dt.datetime.now(dt.UTC)) - settle
        if watermark is not None and until <= watermark:
            return 0
        # Only the files that can hold events received after the watermark are read.
        events = log.scan_received("prediction", system, after=watermark, until=until)
        rows, new_watermark = build_profiles(
            events, binnings, watermark, bucket=bucket, until=until
        )
        self.write(system, rows, watermark=new_watermark)
        return len(rows)

    def sync(
        self,
        log: Any,
        system: str,
        binnings: Mapping[str, Binning],
        *,
        bucket: str | dt.timedelta = "1h",
        settle: dt.timedelta = dt.timedelta(seconds=30),
        now: dt.datetime | None = None,
    ) -> list[ProfileRow]:
        """Refresh as :meth:`refresh` does, in the same scan profile the events still settling, and
        return those rows unstored.

        A reader that merges the returned rows with the stored ones sees every event acknowledged
        so far, while the store keeps its guarantee that no event is skipped for good: the
        settling events are profiled again (and stored) by a later run, once they have settled.
        This is what a monitor run needs when events were received moments ago, e.g. a replay of
        past weeks.
        """
        watermark = self.watermark(system)
        until = (now or dt.datetime.now(dt.UTC)) - settle
        # Everything received after the stored watermark, settling events included; only the
        # files that can hold such events are read, not the history.
        events = log.scan_received("prediction", system, after=watermark)
        if watermark is None or until > watermark:
            rows, watermark = build_profiles(
                events, binnings, watermark, bucket=bucket, until=until
            )
            self.write(system, rows, watermark=watermark)
        settling, _ = build_profiles(events, binnings, watermark, bucket=bucket)
        return settling

    def _directory(self, system: str) -> Path:
        if not isinstance(system, str) or not _NAME_PATTERN.fullmatch(system):
            raise InvalidInputError(
                f"system {system!r} is not a valid name: use 1-128 letters, digits, '_', '.' or "
                "'-', starting with a letter or digit (it becomes a directory name)"
            )
        return self.root / f"system={system}"

    def _has_files(self, system: str) -> bool:
        return any(self._directory(system).glob("*.parquet"))

    def _query(self, sql: str, parameters: dict[str, Any]) -> pa.Table:
        pattern = str(self.root / "system=*" / "*.parquet").replace("'", "''")
        files = (
            f"read_parquet('{pattern}', hive_partitioning = true, hive_types_autocast = false, "
            "hive_types = {'system': VARCHAR}, union_by_name = true)"
        )
        return self._run(sql.replace("{files}", files), parameters)

    def _run(self, sql: str, parameters: dict[str, Any]) -> pa.Table:
        with duckdb.connect() as connection:
            connection.execute("SET TimeZone = 'UTC'")
            try:
                return _fetch(connection.sql(sql, params=parameters))
            except duckdb.Error as error:
                raise StoreError(
                    f"could not read profiles under {self.root} ({error}); check the files are "
                    "readable Parquet written by ProfileStore"
                ) from error


def _table_of(rows: Sequence[ProfileRow], watermark: dt.datetime | None) -> pa.Table:
    """Profile rows as the columns ProfileStore writes."""
    return pa.table(
        {
            "bucket_start": pa.array([row.bucket_start for row in rows], _TIMESTAMP),
            "column": pa.array([row.column for row in rows], pa.string()),
            "model_version": pa.array([row.model_version for row in rows], pa.int64()),
            "binning": [_compact_json(row.profile.binning.to_dict()) for row in rows],
            **{
                name: pa.array([getattr(row.profile, name) for row in rows], data_type)
                for name, data_type in _STORED_FIELDS.items()
            },
            "sketch": pa.array([_sketch_bytes(row.profile) for row in rows], pa.binary()),
            "watermark": pa.array([watermark] * len(rows), _TIMESTAMP),
        }
    )


def _merged_by_day(rows: Sequence[ProfileRow]) -> list[ProfileRow]:
    """One row per day, column, model version and binning: the merge of that day's rows."""
    grouped: dict[tuple[Any, ...], list[ColumnProfile]] = {}
    for row in rows:
        day = row.bucket_start.astimezone(dt.UTC).date()
        key = (day, row.column, row.model_version, row.profile.binning.fingerprint_)
        grouped.setdefault(key, []).append(row.profile)
    return [
        ProfileRow(
            dt.datetime.combine(day, dt.time(), dt.UTC), column, merge_profiles(parts), version
        )
        for (day, column, version, _), parts in sorted(
            grouped.items(),
            key=lambda item: (
                item[0][0],
                item[0][1],
                item[0][2] is None,
                item[0][2] or 0,
                item[0][3],
            ),
        )
    ]


def _runs_sql(runs: Sequence[tuple[dt.datetime, dt.datetime]]) -> str:
    """SQL true for a ``bucket_start`` inside any of the runs (UTC day boundaries, as literals)."""
    return " OR ".join(
        f"(bucket_start >= TIMESTAMPTZ '{low.isoformat()}' AND bucket_start < "
        f"TIMESTAMPTZ '{high.isoformat()}')"
        for low, high in runs
    )


def _compact_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


_STORED_FIELDS: Final = {
    **dict.fromkeys(
        ["count", "null_count", "violation_count", "unseen_count", "infinite_count"], pa.int64()
    ),
    "finite_count": pa.int64(),
    **dict.fromkeys(["finite_mean", "finite_m2", "minimum", "maximum"], pa.float64()),
    "bin_counts": pa.list_(pa.int64()),
    "bin_sums": pa.list_(pa.float64()),  # null for categorical profiles
}
#: Fields read apart from the rest: lists, converted in one flat pass each.
_LIST_FIELDS: Final = ("bin_counts", "bin_sums")


def _rows_from_table(table: pa.Table) -> list[ProfileRow]:
    """Profile rows from the columns ProfileStore writes, converted column by column."""
    values = {
        name: table.column(name).to_pylist()
        for name in table.column_names
        if name not in _LIST_FIELDS
    }
    bin_counts = _list_column(table, "bin_counts", np.int64)
    bin_sums = _list_column(table, "bin_sums", np.float64)
    # A window repeats a few binnings and bucket starts many times: parse each once.
    binnings = {text: Binning.from_dict(json.loads(text)) for text in set(values["binning"])}
    moments = {
        micros: _EPOCH + dt.timedelta(microseconds=micros) for micros in set(values["bucket_start"])
    }
    scalars = [name for name in _STORED_FIELDS if name not in _LIST_FIELDS]
    rows = []
    for index in range(table.num_rows):
        binning = binnings[values["binning"][index]]
        counts, sums = bin_counts[index], bin_sums[index]
        if (
            counts is None
            or counts.size != binning.n_bins
            or (sums is not None and sums.size != counts.size)
        ):
            raise StoreError(
                f"a stored profile of column {values['column'][index]!r} holds "
                f"{None if counts is None else counts.size} bin counts for a binning of "
                f"{binning.n_bins}; the file is corrupt, rebuild it"
            )
        sketch = SKETCH_TYPES[binning.kind_].deserialize(values["sketch"][index])
        profile = ColumnProfile(
            binning=binning,
            bin_counts=counts,
            bin_sums=sums,
            **{name: values[name][index] for name in scalars},
            **{SKETCH_FIELDS[binning.kind_]: sketch},
        )
        moment = moments[values["bucket_start"][index]]
        rows.append(
            ProfileRow(moment, values["column"][index], profile, values["model_version"][index])
        )
    return rows


def _list_column(table: pa.Table, name: str, dtype: type) -> list[Any]:
    """Each row's list as a numpy array (None where null or where no file has the column)."""
    if name not in table.column_names:
        return [None] * table.num_rows
    column = table.column(name).combine_chunks()
    # The offsets index the child values as they are (a slice of the array, nulls included).
    flat = column.values.to_numpy(zero_copy_only=False).astype(dtype)
    offsets = column.offsets.to_numpy()
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    return [
        flat[offsets[index] : offsets[index + 1]] if valid[index] else None
        for index in range(len(column))
    ]


def _sketch_bytes(profile: ColumnProfile) -> bytes:
    return bytes(getattr(profile, SKETCH_FIELDS[profile.kind]).serialize())
