"""Durable file operations of the event log, its maintenance lock, its clock and its crash points.

Every file the log publishes is written under a hidden temporary name, fsynced, renamed into place,
and its directory fsynced. ``CrashPoint`` kills the process between two such steps when
``STEWARD_EVENTS_CRASH_AT`` asks it to, so crash tests exercise the real code.

Example::

    with maintenance_lock(root, exclusive=True):
        write_parquet_atomically(table, root / "x.parquet", CrashPoint(None))
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Final

import pyarrow as pa
import pyarrow.parquet as pq

from steward.errors import InvalidInputError

__all__ = [
    "CRASH_AT_ENV",
    "CrashPoint",
    "fsync_directory",
    "maintenance_lock",
    "make_directories",
    "now_us",
    "remove_leftovers",
    "sync_data",
    "try_maintenance_lock",
    "write_atomically",
    "write_parquet_atomically",
]

CRASH_AT_ENV: Final = "STEWARD_EVENTS_CRASH_AT"
_CRASH_STEPS: Final = frozenset(
    {
        "wal.torn-write",
        "wal.before-fsync",
        "roll.temp-written",
        "roll.partition-renamed",
        "roll.before-segment-delete",
        "compact.before-source-delete",
        "erase.after-tombstone",
        "mirror.uploaded",
    }
)


class CrashPoint:
    """Kills this process with SIGKILL at a named step; armed by ``STEWARD_EVENTS_CRASH_AT``.

    The value is ``STEP`` or ``STEP@N`` (crash on the N-th time the step is reached). It exists so
    crash tests exercise the real code between two durable steps; never set it in production.
    """

    def __init__(self, specification: str | None) -> None:
        self._step, self._remaining = None, 0
        if specification:
            step, _, count = specification.partition("@")
            if step not in _CRASH_STEPS or (count and not count.isdigit()):
                raise InvalidInputError(
                    f"{CRASH_AT_ENV}={specification!r} is not STEP or STEP@N with STEP one of "
                    f"{', '.join(sorted(_CRASH_STEPS))}; unset it outside crash tests"
                )
            self._step, self._remaining = step, int(count or 1)
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> CrashPoint:
        """The crash point ``STEWARD_EVENTS_CRASH_AT`` names (unarmed when it is unset)."""
        return cls(os.environ.get(CRASH_AT_ENV))

    def due(self, step: str) -> bool:
        """Count one arrival at ``step``; True when this arrival is the one to crash at."""
        if step != self._step:
            return False
        with self._lock:
            self._remaining -= 1
            return self._remaining == 0

    def hit(self, step: str) -> None:
        """Crash here if this arrival at ``step`` is the armed one."""
        if self.due(step):
            self.crash()

    @staticmethod
    def crash() -> None:
        """Kill this process with SIGKILL, as a power cut or ``kill -9`` would."""
        os.kill(os.getpid(), signal.SIGKILL)


def now_us() -> int:
    """The wall clock in microseconds since the epoch, read through ``steward.data.events.time``.

    Receive stamps and erasure tombstones take their time from here. The clock is looked up on the
    package at each call, so a test can replace ``steward.data.events.time`` with a fake clock.
    """
    clock = getattr(sys.modules.get(__package__ or ""), "time", time)
    return int(clock.time_ns()) // 1000


#: fdatasync skips metadata an append does not need; macOS has only fsync.
sync_data: Final[Callable[[int], None]] = getattr(os, "fdatasync", os.fsync)


def fsync_directory(path: Path) -> None:
    """Make the entries of directory ``path`` (creations, renames, removals) durable."""
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def make_directories(path: Path) -> None:
    """Create ``path`` and its missing parents; fsync each parent that gained an entry."""
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir()
        fsync_directory(directory.parent)


def write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through a hidden temporary file: ``write`` it, fsync, rename into place.

    The directory is not fsynced here: the caller does, once for every file it publishes there.
    """
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as file:
        write(file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def write_parquet_atomically(
    table: pa.Table, path: Path, crash: CrashPoint, crash_step: str | None = None
) -> None:
    """Write to a hidden temporary file, fsync, rename into place, fsync the directory."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as file:
        pq.write_table(table, file, compression="zstd")
        file.flush()
        os.fsync(file.fileno())
    if crash_step is not None:
        crash.hit(crash_step)
    os.replace(temporary, path)
    fsync_directory(path.parent)


@contextlib.contextmanager
def maintenance_lock(root: Path, *, exclusive: bool) -> Iterator[None]:
    """Rolls hold it shared; compaction, erasure and retention hold it exclusive.

    flock locks from separate ``open`` calls conflict even inside one process, so threads and
    processes are both covered.
    """
    make_directories(root)
    with open(root / "_maintenance.lock", "a+b") as file:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(file.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def try_maintenance_lock(root: Path) -> Iterator[bool]:
    """The maintenance lock exclusive if it is free now (yields True), else nothing (False)."""
    make_directories(root)
    with open(root / "_maintenance.lock", "a+b") as file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(file.fileno(), fcntl.LOCK_UN)


def remove_leftovers(directory: Path, pattern: str) -> None:
    """Remove what an interrupted operation left (hidden temporaries, renamed-away partitions)."""
    for path in directory.glob(pattern):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
