"""Rolling write-ahead segments into partitioned Parquet, adopting dead writers, and compaction.

A sealed segment becomes one Parquet file per (kind, system, event date) it touches, each with its
id index (``index``) written first. File names derive from (writer, segment number) and each
file's footer names the segments it holds (``steward.sources``), so rolling a segment again after
a crash, even after compaction merged its file away, never stores a row twice.

Example::

    roll_segment(root, "web-1", 7, root / "_wal/web-1/000000000007.wal", CrashPoint(None),
                 recovering=True)
    compact(root, "prediction", "churn", date(2026, 11, 22), CrashPoint(None))
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from steward.data.events.commits import FileCommits
from steward.data.events.durable import (
    CrashPoint,
    fsync_directory,
    maintenance_lock,
    make_directories,
    remove_leftovers,
    write_parquet_atomically,
)
from steward.data.events.index import received_range, write_index
from steward.data.events.layout import (
    index_paths,
    parquet_files,
    partition_directory,
    remove_orphan_indexes,
)
from steward.data.events.schemas import PARTITION_COLUMNS, SCHEMA_VERSION
from steward.data.events.tombstones import drop_erased, load_erasures
from steward.data.events.wal import WAL_DIRECTORY, decode_segment, segments, try_lock

__all__ = [
    "adopt_orphans",
    "compact",
    "file_sources",
    "remove_parquet",
    "roll_segment",
    "split_by_partition",
    "with_sources",
    "write_rolled",
]

_SOURCES_KEY: Final = b"steward.sources"
_ABANDONED_SECONDS: Final = 3600.0


def file_sources(path: Path) -> set[str]:
    """The segments (``writer:number``) whose rows a Parquet file holds, from its footer."""
    metadata = pq.read_metadata(path).metadata or {}
    return set(json.loads(metadata.get(_SOURCES_KEY, b"[]")))


def with_sources(table: pa.Table, kind: str, sources: Iterable[str]) -> pa.Table:
    """``table`` with the footer metadata naming its kind, schema version and source segments."""
    metadata = {
        _SOURCES_KEY: json.dumps(sorted(sources)).encode(),
        b"steward.kind": kind.encode(),
        b"steward.schema_version": str(SCHEMA_VERSION).encode(),
    }
    return table.replace_schema_metadata(metadata)


def _already_rolled(directory: Path, name: str, source: str) -> bool:
    """Whether an earlier, interrupted roll already put this segment's rows in the partition."""
    if (directory / name).exists():
        return True
    # Compaction may have merged the earlier file away; its footer still names the segment.
    return any(source in file_sources(path) for path in parquet_files(directory))


def split_by_partition(table: pa.Table) -> Iterator[tuple[str, dt.date, pa.Table]]:
    """(system, UTC date of ``event_time``, rows) for each partition a table's rows fall in."""
    days = pc.cast(table["event_time"], pa.date32())
    keyed = table.append_column("_day", days)
    pairs = keyed.group_by(["system", "_day"]).aggregate([]).to_pylist()
    for pair in sorted(pairs, key=lambda item: (item["system"], item["_day"])):
        mask = pc.and_(
            pc.equal(keyed["system"], pair["system"]), pc.equal(keyed["_day"], pair["_day"])
        )
        yield pair["system"], pair["_day"], table.filter(mask)


def write_rolled(
    directory: Path,
    name: str,
    rows: pa.Table,
    *,
    kind: str,
    sources: Iterable[str],
    received: tuple[int, int],
    crash: CrashPoint,
) -> None:
    """Publish ``rows`` (with their ``kind`` and ``system`` columns) as one file of a partition.

    Writes the id index first, then the Parquet file (temporary name, fsync, rename, directory
    fsync). ``received`` bounds the rows' ``received_at`` (µs) and names the index.
    """
    make_directories(directory)
    write_index(directory / name, rows, received)
    table = with_sources(rows.drop_columns(list(PARTITION_COLUMNS)), kind, sources)
    write_parquet_atomically(table, directory / name, crash, "roll.temp-written")


def roll_segment(
    root: Path,
    writer: str,
    number: int,
    path: Path,
    crash: CrashPoint,
    *,
    recovering: bool,
    commits: FileCommits | None = None,
) -> None:
    """Write a sealed segment's rows into Parquet, tell ``commits``, then delete the segment.

    File names derive from (writer, segment number), so a roll repeated after a crash rewrites
    the same names; ``recovering`` also checks compacted footers so no row lands twice. Every
    index is named after the whole segment's ``received_at`` range, read before erasures drop
    rows, so a repeated roll names it the same. A file an interrupted roll of this segment
    already published is committed again as it is (its commit may be what the crash cut off).
    """
    batches: dict[str, list[pa.RecordBatch]] = {}
    for kind, batch in decode_segment(path.read_bytes()):
        batches.setdefault(kind, []).append(batch)
    tables = {kind: pa.Table.from_batches(items) for kind, items in batches.items()}
    ranges = [received_range(table) for table in tables.values() if table.num_rows]
    received = (min(r[0] for r in ranges), max(r[1] for r in ranges)) if ranges else (0, 0)
    source, name = f"{writer}:{number}", f"part-{writer}-{number:012d}.parquet"
    published: list[Path] = []
    with maintenance_lock(root, exclusive=False):
        erasures = load_erasures(root)
        for kind, table in tables.items():
            for system, day, rows in split_by_partition(drop_erased(table, erasures)):
                directory = partition_directory(root, kind, system, day)
                if recovering and directory.is_dir() and _already_rolled(directory, name, source):
                    if (directory / name).exists():
                        published.append(directory / name)
                    continue
                write_rolled(
                    directory,
                    name,
                    rows,
                    kind=kind,
                    sources=[source],
                    received=received,
                    crash=crash,
                )
                published.append(directory / name)
                crash.hit("roll.partition-renamed")
        (commits or FileCommits(root))("roll", added=published)
        crash.hit("roll.before-segment-delete")
        path.unlink()
        fsync_directory(path.parent)


def _remove_if_abandoned(directory: Path) -> None:
    """Remove a writer directory that never got its LOCK (the writer died while claiming it).

    Such a directory holds no segment: a writer creates segments only after its LOCK. The age
    check leaves alone a writer that is claiming its directory right now.
    """
    with contextlib.suppress(FileNotFoundError):
        stale = time.time() - directory.stat().st_mtime > _ABANDONED_SECONDS
        if stale and not (directory / "LOCK").exists() and not segments(directory):
            shutil.rmtree(directory, ignore_errors=True)


def adopt_orphans(
    root: Path, own_writer: str | None, crash: CrashPoint, commits: FileCommits | None = None
) -> int:
    """Roll the segments of writers that died (their lock is free); return how many were adopted."""
    wal = root / WAL_DIRECTORY
    if not wal.is_dir():
        return 0
    adopted = 0
    for directory in sorted(wal.iterdir()):
        if directory.name == own_writer or not directory.is_dir():
            continue
        descriptor = try_lock(directory / "LOCK")
        if descriptor is None:
            _remove_if_abandoned(directory)
            continue
        try:
            for number, path in segments(directory):
                roll_segment(
                    root, directory.name, number, path, crash, recovering=True, commits=commits
                )
            shutil.rmtree(directory)
            fsync_directory(wal)
            adopted += 1
        finally:
            os.close(descriptor)
    return adopted


# ---------------------------------------------------------------------------------------------
# Compaction


def remove_parquet(path: Path) -> None:
    """Delete a Parquet file, then its id index (a reader that finds no index sees no file)."""
    path.unlink()
    for index in index_paths(path):
        index.unlink(missing_ok=True)


def _without_superseded(files: list[Path], removed: list[Path]) -> list[Path]:
    """Delete files whose segments a compacted file already holds (a compaction crashed)."""
    sourced = sorted(((path, file_sources(path)) for path in files), key=lambda item: -len(item[1]))
    kept: list[tuple[Path, set[str]]] = []
    for path, sources in sourced:
        if sources and any(sources <= other for _, other in kept):
            remove_parquet(path)
            removed.append(path)
        else:
            kept.append((path, sources))
    return sorted(path for path, _ in kept)


def compact(
    root: Path,
    kind: str,
    system: str,
    day: dt.date,
    crash: CrashPoint,
    commits: FileCommits | None = None,
) -> int:
    """Merge the Parquet files of one partition into one; return how many files were merged.

    The merged file (and its index) is renamed into place before its sources are deleted; after
    a crash in between, the next compaction deletes the sources the merged file covers.
    ``commits`` hears of the merged file and of every file removed, once they are.
    """
    directory = partition_directory(root, kind, system, day)
    commit = commits or FileCommits(root)
    with maintenance_lock(root, exclusive=True):
        if not directory.is_dir():
            return 0
        remove_leftovers(directory, ".*.tmp")
        superseded: list[Path] = []
        files = _without_superseded(parquet_files(directory), superseded)
        remove_orphan_indexes(directory)
        if len(files) < 2:
            if superseded:
                fsync_directory(directory)
                commit("compact", removed=superseded)
            return 0
        tables = [pq.read_table(path, partitioning=None) for path in files]
        sources = set().union(*(file_sources(path) for path in files))
        merged = pa.concat_tables(
            [table.replace_schema_metadata(None) for table in tables], promote_options="default"
        ).sort_by("event_time")
        target = directory / f"compact-{secrets.token_hex(8)}.parquet"
        write_index(target, merged, received_range(merged))
        write_parquet_atomically(with_sources(merged, kind, sources), target, crash)
        crash.hit("compact.before-source-delete")
        for path in files:
            remove_parquet(path)
        fsync_directory(directory)
        commit("compact", added=[target], removed=[*superseded, *files])
    return len(files)
