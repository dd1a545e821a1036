"""The write-ahead log: record encoding, segment files, and the group-committing writer.

A segment is ``<root>/_wal/<writer>/<number>.wal``: a magic, then records of
``[length u32][crc32 u32][payload]``. A payload holds the batches of one append call, so a call is
in the log completely or not at all. ``Writer`` is one process's own segment directory: it commits
appends with one fsync per group and hands sealed segments to a roll function (``rollup``) on a
background thread.

Example::

    record = encode_record([("prediction", batch)])
    decode_segment(SEGMENT_MAGIC + record)  # [("prediction", batch)]
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import secrets
import shutil
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import pyarrow as pa

from steward.data.events.durable import (
    CrashPoint,
    fsync_directory,
    make_directories,
    now_us,
    sync_data,
)
from steward.data.events.schemas import KIND_CODES, KINDS_BY_CODE, SCHEMA_VERSION, SCHEMAS
from steward.errors import ConflictError, StoreError

__all__ = [
    "SEGMENT_MAGIC",
    "WAL_DIRECTORY",
    "Writer",
    "decode_segment",
    "encode_record",
    "new_writer_id",
    "segments",
    "try_lock",
]

logger = logging.getLogger(__name__)
#: Seconds between a failed write and the next attempt to write again (a new segment).
RECOVER_AFTER: Final = 1.0

SEGMENT_MAGIC: Final = b"STEWWAL1"
_RECORD_HEADER: Final = struct.Struct("<II")
_PART_HEADER: Final = struct.Struct("<BBI")
_PART_COUNT: Final = struct.Struct("<H")
#: The directory under the root that holds one directory of segments per writer.
WAL_DIRECTORY: Final = "_wal"
SEGMENT_SUFFIX: Final = ".wal"

#: Rolls one sealed segment of this writer: (segment number, path, recovering).
RollSegment = Callable[[int, Path, bool], None]
#: Rolls the segments of writers that died; returns how many writers it adopted.
AdoptOrphans = Callable[[], int]


def encode_record(batches: Sequence[tuple[str, pa.RecordBatch]]) -> bytes:
    """One write-ahead record holding the batches of one append call, framed and checksummed."""
    # One copy of the serialized batches, into the record: the checksum runs piece by piece.
    pieces: list[bytes | pa.Buffer] = [_PART_COUNT.pack(len(batches))]
    for kind, batch in batches:
        body = batch.serialize()
        pieces.append(_PART_HEADER.pack(KIND_CODES[kind], SCHEMA_VERSION, body.size))
        pieces.append(body)
    checksum, length = 0, 0
    for piece in pieces:
        checksum = zlib.crc32(piece, checksum)
        length += len(piece) if isinstance(piece, bytes) else piece.size
    return b"".join([_RECORD_HEADER.pack(length, checksum), *pieces])


def _decode_payload(payload: memoryview) -> list[tuple[str, pa.RecordBatch]]:
    (count,) = _PART_COUNT.unpack_from(payload, 0)
    offset, batches = _PART_COUNT.size, []
    for _ in range(count):
        code, version, length = _PART_HEADER.unpack_from(payload, offset)
        offset += _PART_HEADER.size
        kind = KINDS_BY_CODE.get(code)
        if kind is None or version != SCHEMA_VERSION:
            raise StoreError(
                f"write-ahead record holds kind code {code} schema version {version}, which this "
                "release cannot read; open the log with the release that wrote it"
            )
        body = pa.py_buffer(payload[offset : offset + length])
        batches.append((kind, pa.ipc.read_record_batch(body, SCHEMAS[kind])))
        offset += length
    return batches


def decode_segment(data: bytes) -> list[tuple[str, pa.RecordBatch]]:
    """Every complete record of a segment; stops at the first torn or corrupt one.

    Everything before an fsync that returned is intact, so the first bad record is past every
    acknowledged one: discarding it and whatever follows loses nothing that was acknowledged.
    """
    if not data.startswith(SEGMENT_MAGIC):
        return []  # crashed while creating the segment: nothing was acknowledged in it
    view, offset, batches = memoryview(data), len(SEGMENT_MAGIC), []
    while offset + _RECORD_HEADER.size <= len(data):
        length, checksum = _RECORD_HEADER.unpack_from(data, offset)
        start, end = offset + _RECORD_HEADER.size, offset + _RECORD_HEADER.size + length
        if length == 0 or end > len(data) or zlib.crc32(view[start:end]) != checksum:
            break
        batches.extend(_decode_payload(view[start:end]))
        offset = end
    return batches


def segments(directory: Path) -> list[tuple[int, Path]]:
    """(number, path) of every segment of a writer directory, oldest first."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:  # adopted or closed meanwhile
        return []
    found = []
    for name in names:
        stem, _, suffix = name.partition(".")
        if f".{suffix}" == SEGMENT_SUFFIX and stem.isdigit():
            found.append((int(stem), directory / name))
    return sorted(found)


def try_lock(path: Path) -> int | None:
    """An flock'ed descriptor on ``path``, or None if it is missing or another process holds it."""
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # The file may have been replaced or removed between open and flock: then this lock
        # guards nothing, and the directory belongs to whoever replaced it.
        if os.fstat(descriptor).st_ino != os.stat(path).st_ino:
            raise BlockingIOError
    except (BlockingIOError, FileNotFoundError):
        os.close(descriptor)
        return None
    return descriptor


# ---------------------------------------------------------------------------------------------
# The writer: group commit and background rolling


def new_writer_id() -> str:
    """A fresh writer id: ``<host>-<pid>-<random>``."""
    host = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:32] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


class Writer:
    """One process's own segment directory, with group commit and a background roll thread.

    Group commit without a commit thread: the first caller that finds no write in progress
    becomes the leader, writes every pending record and fsyncs once; callers that arrive during
    that fsync queue their records for the next leader. Handing the write to a separate thread
    instead costs a GIL hand-off per commit, which under load is the dominant cost. Sealed
    segments go to ``roll`` on the background thread, and once a minute ``adopt`` rolls the
    segments of writers that died.
    """

    def __init__(
        self,
        root: Path,
        writer_id: str,
        segment_bytes: int,
        segment_seconds: float,
        crash: CrashPoint,
        fsync: bool,
        roll: RollSegment,
        adopt: AdoptOrphans,
    ) -> None:
        self.root, self.writer_id, self._crash = root, writer_id, crash
        self._roll, self._adopt = roll, adopt
        self._fsync = fsync
        self._segment_bytes, self._segment_seconds = segment_bytes, segment_seconds
        self.directory = root / WAL_DIRECTORY / writer_id
        self._lock_descriptor = self._claim_directory()
        existing = segments(self.directory)
        # Segments left by an earlier run under the same writer id are rolled like orphans.
        self._sealed: list[tuple[int, Path, bool]] = [(n, p, True) for n, p in existing]
        self._segment_number = existing[-1][0] if existing else 0
        self._open_segment()
        self._mutex = threading.Lock()
        self._done = threading.Condition(self._mutex)
        self._pending: list[bytes] = []
        self._submitted = self._durable = 0
        self._writing = self._closing = self._stopping = False
        self._failure: StoreError | None = None
        self._retry_at = 0.0
        self._stamp_lock, self._roll_mutex = threading.Lock(), threading.Lock()
        self._last_received_us, self._next_sequence = 0, 0
        self._roll_wakeup = threading.Event()
        self._roll_thread = threading.Thread(
            target=self._roll_loop, name=f"steward-roll-{writer_id}", daemon=True
        )
        self._roll_thread.start()

    def _claim_directory(self) -> int:
        make_directories(self.directory)
        # Lock a temporary file, then rename it to LOCK: an adopter never sees an unlocked LOCK.
        temporary = self.directory / f"LOCK.{secrets.token_hex(4)}"
        descriptor = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        holder = try_lock(self.directory / "LOCK")
        if holder is None and (self.directory / "LOCK").exists():
            os.close(descriptor)
            temporary.unlink()
            raise ConflictError(
                f"event log writer {self.writer_id!r} is already open under {self.root}; give "
                "each process its own writer_id (or leave it unset for a fresh one)"
            )
        # Keep holding a stale LOCK until ours replaces it, so no adopter slips in between.
        os.replace(temporary, self.directory / "LOCK")
        fsync_directory(self.directory)
        if holder is not None:
            os.close(holder)
        return descriptor

    # -- stamping and submitting

    def stamp(self, count: int) -> tuple[int, int]:
        """Receive time (never going backwards) and the first of ``count`` sequence numbers."""
        with self._stamp_lock:
            now = now_us()
            self._last_received_us = max(self._last_received_us, now)
            first = self._next_sequence
            self._next_sequence += count
            return self._last_received_us, first

    def submit(self, record: bytes) -> None:
        """Return once ``record`` is fsynced, committing it (and others') if no one else is."""
        with self._mutex:
            self._raise_if_unusable()
            self._pending.append(record)
            self._submitted += 1
            ticket = self._submitted
            while self._durable < ticket:
                if self._failure is not None:
                    raise StoreError(str(self._failure))
                if self._writing:
                    self._done.wait()
                else:
                    self._lead(self._commit_pending)

    def backlog_bytes(self) -> int:
        """Bytes of this writer's segments not rolled yet (the current one included)."""
        with self._mutex:
            paths = [path for _, path, _ in self._sealed]
            waiting = self._segment_size
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                waiting += path.stat().st_size
        return waiting

    def _raise_if_unusable(self) -> None:
        if self._failure is not None and not self._recovered():
            raise StoreError(str(self._failure))
        if self._closing:
            raise StoreError(f"event log writer {self.writer_id!r} is closed; open a new EventLog")

    def probe(self) -> StoreError | None:
        """Why appends would fail now, after trying to recover if a failure is due for a retry;
        None when the writer can write."""
        with self._mutex:
            if self._failure is not None:
                self._recovered()
            return self._failure

    def _recovered(self) -> bool:
        """After a failure, at most every ``RECOVER_AFTER`` seconds: start a new segment.

        Called with the mutex held and no write in progress (a failure stops writes). The
        failed segment may end in a torn or unsynced record, so it is never appended to again:
        it is rolled like an orphan's (a torn tail is cut off). Records the failed write held
        were never acknowledged; those a retry sends again collapse by id.
        """
        if self._closing or self._writing or time.monotonic() < self._retry_at:
            return False
        self._retry_at = time.monotonic() + RECOVER_AFTER
        with contextlib.suppress(OSError):
            os.close(self._segment_descriptor)
        failed = (self._segment_number, self._segment_path, True)
        try:
            self._open_segment()
        except OSError as error:
            self._failure = self._failure_for(error)
            return False
        self._sealed.append(failed)
        self._pending, self._durable = [], self._submitted
        logger.warning("event log writer %s recovered: %s", self.writer_id, self._failure)
        self._failure = None
        self._roll_wakeup.set()
        return True

    def _lead(self, action: Callable[[], None]) -> None:
        """Run ``action`` as the only writer; called and returns with the mutex held."""
        self._writing = True
        self._mutex.release()
        try:
            action()
        except OSError as error:
            self._failure = self._failure_for(error)
            self._retry_at = time.monotonic() + RECOVER_AFTER
        except BaseException as error:
            # Other callers' records were taken too: fail them rather than leave them waiting.
            self._failure = self._failure_for(error)
            raise
        finally:
            self._mutex.acquire()
            self._writing = False
            self._done.notify_all()

    def _commit_pending(self) -> None:
        with self._mutex:
            records, self._pending = self._pending, []
            last = self._submitted
        if records:
            self._write_durably(records)
        with self._mutex:
            self._durable = last
        if self._segment_is_due():
            self._seal_segment()

    def seal(self, *, only_if_due: bool = False) -> None:
        """Close the current segment (if it has records) and queue it for rolling."""
        with self._mutex:
            if only_if_due and (self._closing or self._failure is not None):
                return
            self._raise_if_unusable()
            while self._writing:
                self._done.wait()
            if not only_if_due or self._segment_is_due():
                self._lead(self._seal_segment)
            if self._failure is not None:
                raise StoreError(str(self._failure))

    def _failure_for(self, error: BaseException) -> StoreError:
        return StoreError(
            f"event log writer {self.writer_id!r} could not write {self._segment_path}: "
            f"{error}; the events of the pending appends were not stored. Free the disk or "
            f"fix the permissions: the writer retries by itself every {RECOVER_AFTER:g} s, "
            "and every acknowledged event is kept"
        )

    # -- the current segment (only the leader touches it)

    def _open_segment(self) -> None:
        self._segment_number += 1
        self._segment_path = self.directory / f"{self._segment_number:012d}{SEGMENT_SUFFIX}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        self._segment_descriptor = os.open(self._segment_path, flags, 0o644)
        os.write(self._segment_descriptor, SEGMENT_MAGIC)
        os.fsync(self._segment_descriptor)
        fsync_directory(self.directory)
        self._segment_size, self._segment_records, self._segment_started = 0, 0, 0.0

    def _write_durably(self, records: list[bytes]) -> None:
        data = b"".join(records)
        if self._crash.due("wal.torn-write"):
            os.write(self._segment_descriptor, data[: len(data) // 2])
            self._crash.crash()
        view = memoryview(data)
        while view:
            written = os.write(self._segment_descriptor, view)
            view = view[written:]
        self._crash.hit("wal.before-fsync")
        if self._fsync:
            sync_data(self._segment_descriptor)
        if self._segment_records == 0:
            self._segment_started = time.monotonic()
        self._segment_size += len(data)
        self._segment_records += len(records)

    def _segment_is_due(self) -> bool:
        if self._segment_records == 0:
            return False
        age = time.monotonic() - self._segment_started
        return self._segment_size >= self._segment_bytes or age >= self._segment_seconds

    def _seal_segment(self) -> None:
        if self._segment_records == 0:
            return
        os.close(self._segment_descriptor)
        with self._mutex:
            self._sealed.append((self._segment_number, self._segment_path, False))
        self._open_segment()
        self._roll_wakeup.set()

    # -- rolling (the roll thread, or a caller of flush)

    def roll_sealed(self) -> None:
        """Roll every sealed segment, oldest first; one caller at a time."""
        with self._roll_mutex:
            while True:
                with self._mutex:
                    if not self._sealed:
                        return
                    number, path, recovering = self._sealed[0]
                self._roll(number, path, recovering)
                with self._mutex:
                    self._sealed.pop(0)

    def _roll_loop(self) -> None:
        adopt_after = 0.0  # adopt orphans at start, then once a minute
        while not self._stopping:
            try:
                self.seal(only_if_due=True)  # a quiet segment still rolls after segment_seconds
                self.roll_sealed()
                if time.monotonic() >= adopt_after:
                    self._adopt()
                    adopt_after = time.monotonic() + 60.0
            except Exception:  # keep rolling later; the segments stay durable meanwhile
                logger.exception("event log writer %s: rolling failed; will retry", self.writer_id)
            self._roll_wakeup.wait(timeout=min(self._segment_seconds, 10.0))
            self._roll_wakeup.clear()

    def close(self) -> None:
        """Commit what is pending, roll every segment, and remove this writer's directory."""
        with self._mutex:
            if self._closing:
                return
            self._closing = True
            while self._writing or self._pending:
                self._done.wait()
            if self._failure is None:
                self._lead(self._seal_segment)
        self._stopping = True
        self._roll_wakeup.set()
        self._roll_thread.join()
        try:
            if self._failure is None:
                self.roll_sealed()
                os.close(self._segment_descriptor)
                shutil.rmtree(self.directory)
                fsync_directory(self.directory.parent)
        finally:
            os.close(self._lock_descriptor)
        if self._failure is not None:
            raise StoreError(str(self._failure))
