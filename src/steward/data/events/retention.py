"""Retention and erasure: dropping old date partitions, and removing one entity's events.

``delete_before`` renames whole partitions out of sight before removing them, so readers see a
partition whole or not at all. ``erase`` stores a tombstone first (readers hide the rows from
then on) and then rewrites each file holding the entity, with its id index, one atomic rename
each; running it again finishes an interrupted erasure. ``erase_ids`` does the same for the
events that name erased predictions by id (shadow scores, outcomes that carry no entity key):
``prediction_ids`` finds the ids, an id tombstone (``tombstones``) keeps them for a rerun.

Example::

    delete_before(root, date(2026, 6, 1))
    ids = prediction_ids(root, "churn", "customer-42")
    erase_ids(root, "churn", ids, CrashPoint(None))
    erase(root, "churn", "customer-42", CrashPoint(None))
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from steward.data.events.commits import FileCommits
from steward.data.events.durable import (
    CrashPoint,
    fsync_directory,
    maintenance_lock,
    now_us,
    remove_leftovers,
    write_parquet_atomically,
)
from steward.data.events.index import received_range, write_index
from steward.data.events.layout import parquet_files, partition_files, partitions
from steward.data.events.read import read_tail
from steward.data.events.rollup import remove_parquet
from steward.data.events.schemas import EVENT_KINDS, utc
from steward.data.events.tombstones import (
    entity_hash,
    erased_id_hashes,
    load_erasures,
    record_erasure,
    record_id_erasure,
)
from steward.errors import InvalidInputError

__all__ = ["as_day", "delete_before", "erase", "erase_ids", "prediction_ids"]

#: The kinds that name a prediction: by their ``id`` (predictions, shadow scores) or by their
#: ``prediction_id`` (outcomes).
_ID_COLUMNS = {"prediction": "id", "shadow": "id", "outcome": "prediction_id"}


def as_day(value: dt.date | str, what: str) -> dt.date:
    """The UTC day of a date, an aware datetime or ``YYYY-MM-DD`` text; raise if it is none."""
    if isinstance(value, dt.datetime):
        return utc(value, what).date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(
            f"{what} {value!r} is not a date; pass a datetime.date or 'YYYY-MM-DD'"
        ) from error


def _drop_partition(directory: Path) -> None:
    """Rename out of sight first, so readers see the whole partition or none of it."""
    trash = directory.with_name(f".trash-{directory.name}-{secrets.token_hex(4)}")
    os.rename(directory, trash)
    fsync_directory(directory.parent)
    shutil.rmtree(trash)


def delete_before(
    root: Path,
    cutoff: dt.date | dt.datetime,
    commits: FileCommits | None = None,
    system: str | None = None,
) -> int:
    """Drop every date partition strictly before ``cutoff``'s UTC day (of ``system`` only, if
    given); return how many.

    ``commits`` hears of every Parquet file the dropped partitions held, once they are gone.
    """
    cutoff_day = as_day(cutoff, "cutoff")
    dropped = 0
    removed: list[Path] = []
    with maintenance_lock(root, exclusive=True):
        try:
            for kind in EVENT_KINDS:
                for directory, day in list(partitions(root, kind, system)):
                    if day < cutoff_day:
                        files = parquet_files(directory)
                        _drop_partition(directory)
                        dropped += 1
                        removed.extend(files)
                for system_directory in (root / f"kind={kind}").glob("system=*"):
                    remove_leftovers(system_directory, ".trash-*")
        finally:  # what was dropped is gone even if a later partition failed
            (commits or FileCommits(root))("retention", removed=removed)
    return dropped


def _rewrite_without(
    path: Path, entity_key: str | Callable[[pa.Table], pa.ChunkedArray]
) -> tuple[int, bool | None]:
    """Rewrite one file (and its index) without an entity's rows (or those ``entity_key`` picks,
    when it is a function of the table); return how many rows went and whether the file is still
    there (None when it was left as it was)."""
    table = pq.read_table(path, partitioning=None)  # keeps the footer's segment sources
    picked = (
        pc.equal(table["entity_key"], entity_key)
        if isinstance(entity_key, str)
        else entity_key(table)
    )
    erased = pc.fill_null(picked, False)
    kept = table.filter(pc.invert(erased))
    if kept.num_rows == 0:
        remove_parquet(path)
        fsync_directory(path.parent)
        return table.num_rows, False
    if kept.num_rows < table.num_rows:
        write_index(path, kept, received_range(kept))
        write_parquet_atomically(kept, path, CrashPoint(None))
        return table.num_rows - kept.num_rows, True
    return 0, None


def _files_holding(files: list[Path], entity_key: str) -> list[Path]:
    if not files:
        return []
    with duckdb.connect() as connection:
        rows = connection.execute(
            "SELECT DISTINCT filename FROM read_parquet($files, filename = true, "
            "union_by_name = true) WHERE entity_key = $key",
            {"files": [str(path) for path in files], "key": entity_key},
        ).fetchall()
    return [Path(row[0]) for row in rows]


def erase(
    root: Path,
    system: str,
    entity_key: str,
    crash: CrashPoint,
    commits: FileCommits | None = None,
) -> int:
    """Remove every event of one entity in a system; return how many rows left the files.

    ``commits`` hears of each file rewritten (its new hash) or removed (it held only the entity).
    """
    removed = 0
    rewritten: list[Path] = []
    gone: list[Path] = []
    with maintenance_lock(root, exclusive=True):
        record_erasure(root, system, entity_key, now_us())
        crash.hit("erase.after-tombstone")
        try:
            for kind in EVENT_KINDS:
                files = partition_files(root, kind, system, None, None)
                for path in _files_holding(files, entity_key):
                    rows, kept = _rewrite_without(path, entity_key)
                    removed += rows
                    if kept is not None:
                        (rewritten if kept else gone).append(path)
        finally:  # the files already rewritten are committed even if a later one failed
            (commits or FileCommits(root))("erasure", added=rewritten, removed=gone)
    return removed


def prediction_ids(root: Path, system: str, entity_key: str) -> list[str]:
    """The ids of the predictions and shadow scores of one entity in a system, and the
    ``prediction_id`` of its outcomes: read from every Parquet file and write-ahead segment,
    tombstones not applied (so a rerun of an interrupted erasure still finds them).

    Example::

        prediction_ids(root, "churn", "customer-42")  # ['p1', 'p7']
    """
    found: set[str] = set()
    with maintenance_lock(root, exclusive=False):
        tail = read_tail(root)
        for kind, column in _ID_COLUMNS.items():
            rows = tail[kind]
            mine = pc.and_(
                pc.equal(rows["system"], system), pc.equal(rows["entity_key"], entity_key)
            )
            found.update(
                value
                for value in rows.filter(pc.fill_null(mine, False))[column].to_pylist()
                if value is not None
            )
            files = partition_files(root, kind, system, None, None)
            if files:
                with duckdb.connect() as connection:
                    found.update(
                        row[0]
                        for row in connection.execute(
                            f"SELECT DISTINCT {column} FROM read_parquet($files, "
                            f"union_by_name = true) WHERE entity_key = $key AND {column} IS NOT NULL",
                            {"files": [str(path) for path in files], "key": entity_key},
                        ).fetchall()
                    )
    return sorted(found)


def _picker(kind: str, hashes: set[str]) -> Callable[[pa.Table], pa.ChunkedArray]:
    def pick(table: pa.Table) -> pa.ChunkedArray:
        values = table[_ID_COLUMNS[kind]].to_pylist()
        return pa.chunked_array(
            [pa.array([value is not None and entity_hash(value) in hashes for value in values])]
        )

    return pick


def _files_naming(files: list[Path], column: str, hashes: set[str]) -> list[Path]:
    if not files or not hashes:
        return []
    with duckdb.connect() as connection:
        connection.register("wanted", pa.table({"digest": pa.array(sorted(hashes))}))
        rows = connection.execute(
            f"SELECT DISTINCT filename FROM read_parquet($files, filename = true, "
            f"union_by_name = true) WHERE sha256({column}) IN (SELECT digest FROM wanted)",
            {"files": [str(path) for path in files]},
        ).fetchall()
    return [Path(row[0]) for row in rows]


def erase_ids(
    root: Path,
    system: str,
    ids: list[str],
    crash: CrashPoint,
    commits: FileCommits | None = None,
) -> dict[str, int]:
    """Remove the predictions and shadow scores with these ids and the outcomes naming them, in
    a system; return the rows removed per kind.

    An id tombstone is stored first (when ``ids`` is not empty); the files are then rewritten
    for every id any id tombstone of the system names, so a rerun with no ids finishes an
    interrupted one. ``commits`` hears of each file rewritten or removed.

    Example::

        erase_ids(root, "churn", ["p1", "p7"], CrashPoint(None))  # {'prediction': 2, ...}
    """
    removed = dict.fromkeys(_ID_COLUMNS, 0)
    rewritten: list[Path] = []
    gone: list[Path] = []
    with maintenance_lock(root, exclusive=True):
        record_id_erasure(root, system, ids, now_us())
        crash.hit("erase.after-tombstone")
        hashes = erased_id_hashes(load_erasures(root), system)
        try:
            for kind, column in _ID_COLUMNS.items():
                files = partition_files(root, kind, system, None, None)
                for path in _files_naming(files, column, hashes):
                    rows, kept = _rewrite_without(path, _picker(kind, hashes))
                    removed[kind] += rows
                    if kept is not None:
                        (rewritten if kept else gone).append(path)
        finally:  # the files already rewritten are committed even if a later one failed
            (commits or FileCommits(root))("erasure", added=rewritten, removed=gone)
    return removed
