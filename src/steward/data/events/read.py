"""Reading the event log: scans by event time and by receive time, id checks, SQL views.

Every read takes the rows still in write-ahead segments (``read_tail``) *before* it lists the
Parquet files: a segment rolled in between then shows up in both, and deduplication collapses it,
rather than in neither. A file that compaction or retention removes between the listing and the
read makes the read start again (``retrying``).

A read by receive time (``scan_received``) opens only the files whose index names a
``received_at`` range reaching past the watermark, and checks the ids it returns against the id
indexes of the older files of the same event dates (a prediction keeps its first copy);
``existing_ids`` answers from the id indexes alone. Neither reads the rows of the history
(decision 0004).

Example::

    scan(root, "prediction", "churn", start=None, end=None)
    scan_received(root, "prediction", "churn", after=watermark, until=None)
    existing_ids(root, "prediction", "churn", ["p1", "p2"])
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from steward.data.events.index import MATCH_SCHEMA, id_hashes, lookup, read_matches
from steward.data.events.layout import RolledFile, partition_files, partitions, rolled_files
from steward.data.events.schemas import (
    DEDUPE_KEYS,
    EVENT_KINDS,
    FIRST_WRITE_WINS,
    LAST_WRITE_WINS,
    SCHEMAS,
    VIEW_NAMES,
    utc,
)
from steward.data.events.tombstones import drop_erased, erasure_table, load_erasures
from steward.data.events.wal import WAL_DIRECTORY, decode_segment, segments
from steward.errors import InvalidInputError, StoreError

__all__ = [
    "READ_ATTEMPTS",
    "count",
    "existing_ids",
    "fetch",
    "files_received_after",
    "micros",
    "query",
    "read_tail",
    "retrying",
    "scan",
    "scan_received",
]

#: How many times a read starts again when files vanish under it before it gives up.
READ_ATTEMPTS: Final = 5
_HIVE_OPTIONS: Final = (
    "hive_partitioning = true, union_by_name = true, hive_types_autocast = false, "
    "hive_types = {'kind': VARCHAR, 'system': VARCHAR, 'date': DATE}"
)
_ERASURE_FILTER: Final = (
    "NOT EXISTS (SELECT 1 FROM erasures AS e WHERE e.system = t.system "
    "AND e.entity_sha256 = sha256(t.entity_key) AND t.received_at <= e.erased_at)"
)
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

T = TypeVar("T")


def read_tail(root: Path) -> dict[str, pa.Table]:
    """Rows still in write-ahead segments, of every writer, alive or dead, per kind.

    Read before listing Parquet files: a segment rolled meanwhile then shows up in both (and
    deduplication collapses it) rather than in neither.
    """
    batches: dict[str, list[pa.RecordBatch]] = {kind: [] for kind in EVENT_KINDS}
    wal = root / WAL_DIRECTORY
    for directory in sorted(wal.iterdir()) if wal.is_dir() else []:
        for _, path in segments(directory):
            try:
                data = path.read_bytes()
            except FileNotFoundError:  # rolled and deleted since the listing
                continue
            for kind, batch in decode_segment(data):
                batches[kind].append(batch)
    return {
        kind: pa.Table.from_batches(items, schema=SCHEMAS[kind]) for kind, items in batches.items()
    }


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def micros(moment: dt.datetime | None, what: str) -> int | None:
    """``moment`` as µs since the epoch (None stays None); raise unless it is timezone-aware."""
    if moment is None:
        return None
    return (utc(moment, what) - _EPOCH) // dt.timedelta(microseconds=1)


def _relation_sql(kind: str, files: list[Path], conditions: list[str], erasures: bool) -> str:
    """SQL for one kind's rows: segments plus Parquet, erasures hidden, duplicates collapsed."""
    columns = ", ".join(f'"{name}"' for name in SCHEMAS[kind].names)
    sources = [f"SELECT {columns} FROM tail_{kind}"]
    if files:
        listing = ", ".join(_sql_text(str(path)) for path in files)
        sources.append(f"SELECT {columns} FROM read_parquet([{listing}], {_HIVE_OPTIONS})")
    where = [*conditions, _ERASURE_FILTER] if erasures else conditions
    order = "DESC" if kind in LAST_WRITE_WINS else "ASC"
    keys = ", ".join(f'"{key}"' for key in DEDUPE_KEYS[kind])
    return (
        f"SELECT {columns} FROM ({' UNION ALL BY NAME '.join(sources)}) AS t "
        f"WHERE {' AND '.join(where) or 'true'} "
        f"QUALIFY row_number() OVER (PARTITION BY {keys} "
        f'ORDER BY "received_at" {order}, "writer" {order}, "sequence" {order}) = 1'
    )


def fetch(relation: duckdb.DuckDBPyRelation) -> pa.Table:
    """A DuckDB relation's rows as an Arrow table (duckdb 1.x and 2.x alike)."""
    # duckdb 1.x returns a Table from arrow(); 2.x a reader, with to_arrow_table() for a Table.
    read = getattr(relation, "to_arrow_table", None)
    result = read() if read is not None else relation.arrow()
    return result if isinstance(result, pa.Table) else result.read_all()


def _conform(table: pa.Table, kind: str) -> pa.Table:
    schema = SCHEMAS[kind]
    return table.select(schema.names).cast(schema)


def retrying(root: Path, action: Callable[[], T]) -> T:
    """Run a read, starting again when a file it listed was removed before it was read."""
    failure: Exception | None = None
    for _ in range(READ_ATTEMPTS):
        try:
            return action()
        except (duckdb.IOException, FileNotFoundError) as error:
            # Compaction or retention removed a listed file before it was read: list again.
            failure = error
    raise StoreError(
        f"could not read the event log at {root} after {READ_ATTEMPTS} attempts: "
        f"{failure}; check that the files are readable"
    )


def _run(root: Path, build: Callable[[duckdb.DuckDBPyConnection], pa.Table]) -> pa.Table:
    def attempt() -> pa.Table:
        with duckdb.connect() as connection:
            connection.execute("SET TimeZone = 'UTC'")
            return build(connection)

    return retrying(root, attempt)


def _relations(
    connection: duckdb.DuckDBPyConnection,
    root: Path,
    kinds: Sequence[str],
    system: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> dict[str, str]:
    tail = read_tail(root)  # first: see read_tail
    erasures = load_erasures(root)
    if erasures:
        connection.register("erasures", erasure_table(erasures))
    conditions = [] if system is None else [f"t.system = {_sql_text(system)}"]
    first = last = None
    if start is not None:
        first = utc(start, "start").date()
        conditions.append(f"t.event_time >= {_sql_text(utc(start, 'start').isoformat())}")
    if end is not None:
        last = utc(end, "end").date()
        conditions.append(f"t.event_time < {_sql_text(utc(end, 'end').isoformat())}")
    relations = {}
    for kind in kinds:
        connection.register(f"tail_{kind}", tail[kind])
        files = partition_files(root, kind, system, first, last)
        relations[kind] = _relation_sql(kind, files, conditions, bool(erasures))
    return relations


def scan(
    root: Path, kind: str, system: str, start: dt.datetime | None, end: dt.datetime | None
) -> pa.Table:
    """Events of one kind and system with ``start <= event_time < end``, in event-time order."""

    def build(connection: duckdb.DuckDBPyConnection) -> pa.Table:
        relation = _relations(connection, root, [kind], system, start, end)[kind]
        return _conform(fetch(connection.sql(f'{relation} ORDER BY "event_time", "id"')), kind)

    return _run(root, build)


def count(root: Path, kind: str, system: str) -> int:
    """How many distinct events of a kind a system has (after deduplication and erasure)."""

    def build(connection: duckdb.DuckDBPyConnection) -> pa.Table:
        relation = _relations(connection, root, [kind], system)[kind]
        return fetch(connection.sql(f"SELECT count(*) AS n FROM ({relation})"))

    return int(_run(root, build)["n"][0].as_py())


def query(root: Path, sql: str) -> pa.Table:
    """Run DuckDB SQL over the views ``predictions``, ``shadows`` and ``outcomes``."""

    def build(connection: duckdb.DuckDBPyConnection) -> pa.Table:
        for kind, relation in _relations(connection, root, EVENT_KINDS).items():
            connection.execute(f"CREATE TEMP VIEW {VIEW_NAMES[kind]} AS {relation}")
        try:
            result = connection.sql(sql)
            if result is None:
                raise InvalidInputError(f"query {sql!r} returns no rows; pass a SELECT")
            return fetch(result)
        except duckdb.IOException:
            raise
        except duckdb.Error as error:
            raise InvalidInputError(
                f"query failed: {error}; the views are predictions, shadows and outcomes"
            ) from error

    return _run(root, build)


# ---------------------------------------------------------------------------------------------
# By receive time, and by id


def files_received_after(
    root: Path, kind: str, system: str, after_us: int | None
) -> tuple[list[Path], dict[dt.date, list[RolledFile]]]:
    """(files that may hold rows received after ``after_us``, the others by partition date).

    Decided from the directory listing: an index's name bounds its file's ``received_at``. A
    file without an index may hold anything, so it is always among the first.
    """
    newer: list[Path] = []
    older: dict[dt.date, list[RolledFile]] = {}
    for directory, day in partitions(root, kind, system):
        for rolled in rolled_files(directory):
            if after_us is None or rolled.received is None or rolled.received[1] > after_us:
                newer.append(rolled.path)
            else:
                older.setdefault(day, []).append(rolled)
    return newer, older


def scan_received(
    root: Path, kind: str, system: str, after: dt.datetime | None, until: dt.datetime | None
) -> pa.Table:
    """The events received in ``(after, until]``, deduplicated as ``scan`` does, in its order.

    Deduplication runs over the rows of the files that may hold events received after ``after``
    (and the segments). Then, for a kind that keeps its first copy, a row also held by an older
    file (received before ``after``) *of the event dates returned* is dropped, as a whole-log
    scan drops it. A copy stored under another event date (an event sent again with a different
    ``event_time``) is not looked for: that would read the indexes of the whole history.
    """
    after_us, until_us = micros(after, "after"), micros(until, "until")
    window = [] if after_us is None else [f'epoch_us("received_at") > {after_us}']
    window += [] if until_us is None else [f'epoch_us("received_at") <= {until_us}']

    def build(connection: duckdb.DuckDBPyConnection) -> pa.Table:
        tail = read_tail(root)  # first: see read_tail
        erasures = load_erasures(root)
        newer, older = files_received_after(root, kind, system, after_us)
        if erasures:
            connection.register("erasures", erasure_table(erasures))
        connection.register(f"tail_{kind}", tail[kind])
        relation = _relation_sql(kind, newer, [f"t.system = {_sql_text(system)}"], bool(erasures))
        fresh = fetch(
            connection.sql(
                f"SELECT * FROM ({relation}) WHERE {' AND '.join(window) or 'true'} "
                'ORDER BY "event_time", "id"'
            )
        )
        if kind in FIRST_WRITE_WINS and older and fresh.num_rows:
            days = pc.unique(pc.cast(fresh["event_time"], pa.date32())).to_pylist()
            same_days = [rolled for day in days for rolled in older.get(day, [])]
            fresh = _without_older_copies(connection, kind, system, fresh, same_days, erasures)
        return _conform(fresh, kind)

    return _run(root, build)


def _without_older_copies(
    connection: duckdb.DuckDBPyConnection,
    kind: str,
    system: str,
    fresh: pa.Table,
    older: list[RolledFile],
    erasures: list[dict[str, Any]],
) -> pa.Table:
    """``fresh`` without the events one of the ``older`` files holds a visible copy of."""
    ids = pc.unique(fresh["id"].combine_chunks())
    hashes = np.sort(id_hashes(ids.to_pylist()))
    files: list[Path] = []
    found: set[str] = set()
    for rolled in older:
        if rolled.index is None:  # never: a file without an index is always a newer one
            continue
        matches = lookup(rolled.index, ids, hashes)
        if matches.num_rows:
            files.append(rolled.path)
            found.update(matches["id"].to_pylist())
    if not files:
        return fresh
    # Rare (a retried event): read the few files holding a copy, with every rule of a scan.
    connection.register("fresh", fresh)
    connection.register("found_ids", pa.table({"id": pa.array(sorted(found), pa.string())}))
    listing = ", ".join(_sql_text(str(path)) for path in files)
    keys = " AND ".join(f'o."{key}" IS NOT DISTINCT FROM f."{key}"' for key in DEDUPE_KEYS[kind])
    where = [f"t.system = {_sql_text(system)}", "t.id IN (SELECT id FROM found_ids)"]
    copies = (
        f"SELECT * FROM read_parquet([{listing}], {_HIVE_OPTIONS}) AS t "
        f"WHERE {' AND '.join([*where, _ERASURE_FILTER] if erasures else where)}"
    )
    return fetch(
        connection.sql(
            f"SELECT * FROM fresh AS f WHERE NOT EXISTS (SELECT 1 FROM ({copies}) AS o "
            f'WHERE {keys}) ORDER BY "event_time", "id"'
        )
    )


def existing_ids(root: Path, kind: str, system: str, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` a system has logged as events of ``kind`` (erased ones excluded).

    Answers from the segments and the id indexes, never opening a Parquet file that has one.
    """
    listed = sorted(set(ids))
    if not listed:
        return set()
    wanted = pa.array(listed, pa.string())
    hashes = np.sort(id_hashes(listed))

    def attempt() -> set[str]:
        tail = read_tail(root)[kind]  # first: see read_tail
        erasures = load_erasures(root)
        mine = pc.and_(pc.equal(tail["system"], system), pc.is_in(tail["id"], wanted))
        found = [tail.filter(mine).select(MATCH_SCHEMA.names).cast(MATCH_SCHEMA)]
        for directory, _ in partitions(root, kind, system):
            for rolled in rolled_files(directory):
                if rolled.index is not None:
                    found.append(lookup(rolled.index, wanted, hashes))
                else:
                    found.append(read_matches(rolled.path, wanted))
        matches = pa.concat_tables(found)
        matches = matches.append_column("system", pa.array([system] * matches.num_rows))
        return set(drop_erased(matches, erasures)["id"].to_pylist())

    return retrying(root, attempt)
