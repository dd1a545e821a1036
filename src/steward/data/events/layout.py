"""Where the event log keeps things: partition directories, their Parquet files and id indexes.

A partition is ``<root>/kind=K/system=S/date=D/``. Each Parquet file in it may have an id index
beside it, ``_<stem>.<first>-<last>.ids``: ``first`` and ``last`` bound the ``received_at`` (µs
since the epoch) of every row of the file, so a read by receive time picks files from a directory
listing alone, without opening any. Names starting with ``_`` or ``.`` are skipped by Spark,
pyarrow datasets and globs on ``*.parquet``.

Example::

    for directory, day in partitions(root, "prediction", "churn"):
        for rolled in rolled_files(directory):
            rolled.path, rolled.index, rolled.received
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "INDEX_SUFFIX",
    "RolledFile",
    "day_of",
    "index_name",
    "index_paths",
    "indexed_parquet",
    "parquet_files",
    "partition_directory",
    "partition_files",
    "partitions",
    "remove_orphan_indexes",
    "rolled_files",
]

#: The suffix of an id index file.
INDEX_SUFFIX: Final = ".ids"
_PARQUET_SUFFIX: Final = ".parquet"


@dataclass(frozen=True)
class RolledFile:
    """A Parquet file of a partition, its id index and the ``received_at`` range the index names.

    ``index`` and ``received`` are None for a file without exactly one index (written by a release
    before indexes existed): readers then open the file itself, and treat its range as unknown.
    """

    path: Path
    index: Path | None
    received: tuple[int, int] | None


def partition_directory(root: Path, kind: str, system: str, day: dt.date) -> Path:
    """The directory of one (kind, system, date) partition."""
    return root / f"kind={kind}" / f"system={system}" / f"date={day.isoformat()}"


def parquet_files(directory: Path) -> list[Path]:
    """The published Parquet files of a directory (hidden temporaries left out), sorted."""
    return sorted(path for path in directory.glob("*.parquet") if not path.name.startswith("."))


def day_of(directory: Path) -> dt.date | None:
    """The date a ``date=YYYY-MM-DD`` directory holds, or None for any other name."""
    try:
        return dt.date.fromisoformat(directory.name.removeprefix("date="))
    except ValueError:
        return None


def partitions(root: Path, kind: str, system: str | None = None) -> Iterator[tuple[Path, dt.date]]:
    """(date directory, day) of every partition of a kind, optionally of one system."""
    kind_directory = root / f"kind={kind}"
    pattern = f"system={system}" if system is not None else "system=*"
    for system_directory in sorted(kind_directory.glob(pattern)):
        for date_directory in sorted(system_directory.glob("date=*")):
            day = day_of(date_directory)
            if day is not None and date_directory.is_dir():
                yield date_directory, day


def partition_files(
    root: Path, kind: str, system: str | None, first: dt.date | None, last: dt.date | None
) -> list[Path]:
    """The Parquet files of a kind (and system) whose partition date is in ``[first, last]``."""
    files: list[Path] = []
    for directory, day in partitions(root, kind, system):
        if (first is None or day >= first) and (last is None or day <= last):
            files.extend(parquet_files(directory))
    return files


def index_name(parquet_name: str, first_us: int, last_us: int) -> str:
    """The name of the id index of ``parquet_name`` holding rows received in [first, last] µs."""
    stem = parquet_name.removesuffix(_PARQUET_SUFFIX)
    return f"_{stem}.{first_us}-{last_us}{INDEX_SUFFIX}"


def _parse_index_name(name: str) -> tuple[str, tuple[int, int]] | None:
    """(Parquet file name, received range) of an index file name, or None if it is not one."""
    if not name.startswith("_") or not name.endswith(INDEX_SUFFIX):
        return None
    stem, _, bounds = name[1 : -len(INDEX_SUFFIX)].rpartition(".")
    first, _, last = bounds.partition("-")
    if not stem or not first.isdigit() or not last.isdigit():
        return None
    return stem + _PARQUET_SUFFIX, (int(first), int(last))


def indexed_parquet(name: str) -> str | None:
    """The name of the Parquet file an id index file is of, or None if ``name`` is not one."""
    parsed = _parse_index_name(name)
    return None if parsed is None else parsed[0]


def rolled_files(directory: Path) -> list[RolledFile]:
    """The Parquet files of a partition with their indexes, from one listing of the directory."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:  # dropped by retention meanwhile
        return []
    indexes: dict[str, list[tuple[str, tuple[int, int]]]] = {}
    for name in names:
        parsed = _parse_index_name(name)
        if parsed is not None:
            indexes.setdefault(parsed[0], []).append((name, parsed[1]))
    files = []
    for name in sorted(names):
        if name.startswith(".") or not name.endswith(_PARQUET_SUFFIX):
            continue
        found = indexes.get(name, [])
        if len(found) == 1:
            files.append(RolledFile(directory / name, directory / found[0][0], found[0][1]))
        else:
            files.append(RolledFile(directory / name, None, None))
    return files


def index_paths(parquet: Path) -> list[Path]:
    """Every id index file of one Parquet file (normally one; none for an older file)."""
    try:
        names = os.listdir(parquet.parent)
    except FileNotFoundError:
        return []
    return [
        parquet.parent / name
        for name in names
        if (parsed := _parse_index_name(name)) is not None and parsed[0] == parquet.name
    ]


def remove_orphan_indexes(directory: Path) -> None:
    """Remove index files whose Parquet file is gone (a crash between the two removals)."""
    try:
        names = set(os.listdir(directory))
    except FileNotFoundError:
        return
    for name in names:
        parsed = _parse_index_name(name)
        if parsed is not None and parsed[0] not in names:
            (directory / name).unlink(missing_ok=True)
