"""Retention and erasure: dropping old date partitions, and removing one entity's events.

``delete_before`` renames whole partitions out of sight before removing them, so readers see a
partition whole or not at all. ``erase`` stores a tombstone first (readers hide the rows from
then on) and then rewrites each file holding the entity, with its id index, one atomic rename
each; running it again finishes an interrupted erasure.

Example::

    delete_before(root, date(2026, 6, 1))
    erase(root, "churn", "customer-42", CrashPoint(None))
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
from pathlib import Path

import duckdb
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
from steward.data.events.rollup import remove_parquet
from steward.data.events.schemas import EVENT_KINDS, utc
from steward.data.events.tombstones import record_erasure
from steward.errors import InvalidInputError

__all__ = ["as_day", "delete_before", "erase"]


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


def _rewrite_without(path: Path, entity_key: str) -> tuple[int, bool | None]:
    """Rewrite one file (and its index) without an entity's rows; return how many rows went and
    whether the file is still there (None when it was left as it was)."""
    table = pq.read_table(path, partitioning=None)  # keeps the footer's segment sources
    erased = pc.fill_null(pc.equal(table["entity_key"], entity_key), False)
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
