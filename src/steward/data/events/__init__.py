"""The durable event log: predictions, shadow scores and outcomes, appended and read back.

``EventLog.append`` returns only after the events are fsynced in a write-ahead segment, so an
acknowledged event survives ``kill -9``. Segments roll into Parquet files partitioned by kind,
system and date, which DuckDB, Spark or any Parquet engine reads. ``docs/events.md`` describes the
envelope, the layout and the guarantees; ``docs/decisions/0002-event-log-format.md`` says why it
is built this way rather than on Delta Lake.

Example::

    log = EventLog("/tmp/steward-events")
    log.append([{"kind": "prediction", "system": "churn", "id": "p1", "score": 0.8}])
    log.count("prediction", "churn")  # 1
    log.close()
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from steward.errors import ConflictError, InvalidInputError, StoreError

__all__ = [
    "CRASH_AT_ENV",
    "EVENT_KINDS",
    "OUTCOME_SCHEMA",
    "PREDICTION_SCHEMA",
    "SHADOW_SCHEMA",
    "EventLog",
    "schema_for",
]

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Schemas

_TIMESTAMP: Final = pa.timestamp("us", tz="UTC")

_ENVELOPE: Final = [
    pa.field("kind", pa.string(), nullable=False),
    pa.field("system", pa.string(), nullable=False),
    pa.field("id", pa.string(), nullable=False),
    pa.field("event_time", _TIMESTAMP, nullable=False),
    pa.field("received_at", _TIMESTAMP, nullable=False),
    pa.field("writer", pa.string(), nullable=False),
    pa.field("sequence", pa.int64(), nullable=False),
]

PREDICTION_SCHEMA: Final = pa.schema(
    [
        *_ENVELOPE,
        pa.field("entity_key", pa.string()),
        pa.field("model_version", pa.int64()),
        pa.field("inputs", pa.string()),
        pa.field("score", pa.float64()),
        pa.field("output", pa.string()),
        pa.field("decision", pa.string()),
        pa.field("holdout", pa.bool_()),
        pa.field("intended_action", pa.string()),
        pa.field("latency_ms", pa.float64()),
        pa.field("violations", pa.string()),
    ]
)
# A shadow score is a prediction by a model that does not serve: same fields, its own kind.
SHADOW_SCHEMA: Final = PREDICTION_SCHEMA
OUTCOME_SCHEMA: Final = pa.schema(
    [
        *_ENVELOPE,
        pa.field("prediction_id", pa.string()),
        pa.field("entity_key", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("value_text", pa.string()),
    ]
)

EVENT_KINDS: Final = ("prediction", "shadow", "outcome")
_SCHEMAS: Final = {
    "prediction": PREDICTION_SCHEMA,
    "shadow": SHADOW_SCHEMA,
    "outcome": OUTCOME_SCHEMA,
}
# The write-ahead log stores (kind code, schema version) per batch so a later schema can still
# read segments an older release wrote.
_KIND_CODES: Final = {"prediction": 1, "shadow": 2, "outcome": 3}
_KINDS_BY_CODE: Final = {code: kind for kind, code in _KIND_CODES.items()}
_SCHEMA_VERSION: Final = 1
_STAMPED: Final = frozenset({"received_at", "writer", "sequence"})
_CALLER_FIELDS: Final = {
    kind: frozenset(schema.names) - _STAMPED for kind, schema in _SCHEMAS.items()
}
_JSON_FIELDS: Final = frozenset({"inputs", "output", "violations"})
# Columns the directory names carry; Parquet files leave them out (hive partitioning).
_PARTITION_COLUMNS: Final = ("kind", "system")
# Which rows are "the same event", and which copy a reader keeps (see docs/events.md).
_DEDUPE_KEYS: Final = {
    "prediction": ("system", "id"),
    "shadow": ("system", "id", "model_version"),
    "outcome": ("system", "id"),
}
_LAST_WRITE_WINS: Final = frozenset({"outcome"})
_STRUCTS: Final = {kind: pa.struct(list(schema)) for kind, schema in _SCHEMAS.items()}
_ROW_WISE_LIMIT: Final = 64
_VIEW_NAMES: Final = {"prediction": "predictions", "shadow": "shadows", "outcome": "outcomes"}

_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def schema_for(kind: str) -> pa.Schema:
    """Return the Arrow schema of one event kind, envelope first.

    Example::

        schema_for("outcome").names[:3]  # ['kind', 'system', 'id']
    """
    return _SCHEMAS[_check_kind(kind)]


def _check_kind(kind: object) -> str:
    if kind not in _SCHEMAS:
        raise InvalidInputError(
            f"event kind {kind!r} is not one of {', '.join(EVENT_KINDS)}; set 'kind' to one of them"
        )
    return str(kind)


def _check_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not _NAME_PATTERN.fullmatch(value):
        raise InvalidInputError(
            f"{what} {value!r} is not a valid name: use 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit (it becomes a directory name)"
        )
    return value


# ---------------------------------------------------------------------------------------------
# Crash points for tests

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
    }
)


class _CrashPoint:
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
    def from_environment(cls) -> _CrashPoint:
        return cls(os.environ.get(CRASH_AT_ENV))

    def due(self, step: str) -> bool:
        if step != self._step:
            return False
        with self._lock:
            self._remaining -= 1
            return self._remaining == 0

    def hit(self, step: str) -> None:
        if self.due(step):
            self.crash()

    @staticmethod
    def crash() -> None:
        os.kill(os.getpid(), signal.SIGKILL)


# ---------------------------------------------------------------------------------------------
# Durable files


# fdatasync skips metadata an append does not need; macOS has only fsync.
_sync_data: Final = getattr(os, "fdatasync", os.fsync)


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _make_directories(path: Path) -> None:
    """Create ``path`` and its missing parents; fsync each parent that gained an entry."""
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir()
        _fsync_directory(directory.parent)


def _write_parquet_atomically(
    table: pa.Table, path: Path, crash: _CrashPoint, crash_step: str | None = None
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
    _fsync_directory(path.parent)


@contextlib.contextmanager
def _maintenance_lock(root: Path, *, exclusive: bool) -> Iterator[None]:
    """Rolls hold it shared; compaction, erasure and retention hold it exclusive.

    flock locks from separate ``open`` calls conflict even inside one process, so threads and
    processes are both covered.
    """
    _make_directories(root)
    with open(root / "_maintenance.lock", "a+b") as file:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(file.fileno(), fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------
# Encoding events


def _json_fallback(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=_json_fallback)


def _event_time(value: Any, received: dt.datetime) -> dt.datetime:
    if value is None:
        return received
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValueError("event_time must be a timezone-aware datetime or ISO-8601 text")
    return value


def _describe(kind: str, index: int, event: Mapping[str, Any]) -> str:
    return f"{kind} #{index} of the append (id {event.get('id')!r})"


_VALID_SYSTEMS: set[object] = set()


def _check_event(kind: str, index: int, event: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = event.keys() - allowed
    if unknown:
        stamped = sorted(unknown & _STAMPED)
        if stamped:
            raise InvalidInputError(
                f"{_describe(kind, index, event)} sets {stamped}, which the log stamps itself; "
                "leave them out (put the time of the event in 'event_time')"
            )
        raise InvalidInputError(
            f"{_describe(kind, index, event)} has unknown fields {sorted(unknown)}; "
            f"the fields of a {kind} are {sorted(allowed)}"
        )
    identifier = event.get("id")
    if not isinstance(identifier, str) or not identifier:
        raise InvalidInputError(
            f"{_describe(kind, index, event)}: 'id' must be a non-empty string; "
            "pass the prediction id (or the outcome id)"
        )
    system = event.get("system")
    if system not in _VALID_SYSTEMS:
        _check_name(system, f"{_describe(kind, index, event)}: system")
        if len(_VALID_SYSTEMS) < 10_000:  # a cache, bounded against a stream of odd names
            _VALID_SYSTEMS.add(system)


def _column(kind: str, field: pa.Field, values: list[Any], events: Sequence[Any]) -> pa.Array:
    try:
        return pa.array(values, type=field.type)
    except (TypeError, ValueError, OverflowError, NotImplementedError):
        for index, value in enumerate(values):
            try:
                pa.array([value], type=field.type)
            except (TypeError, ValueError, OverflowError, NotImplementedError) as error:
                raise InvalidInputError(
                    f"{_describe(kind, index, events[index])}: field {field.name!r} expects "
                    f"{field.type}, got {value!r} ({type(value).__name__}); fix or omit it"
                ) from error
        raise


def _encode_kind(
    kind: str, events: Sequence[Mapping[str, Any]], received_us: int, writer: str, first: int
) -> pa.RecordBatch:
    """Turn the events of one kind into a record batch, stamping the server-side fields."""
    schema = _SCHEMAS[kind]
    allowed = _CALLER_FIELDS[kind]
    received = dt.datetime.fromtimestamp(received_us / 1e6, dt.UTC)
    rows = []
    for index, event in enumerate(events):
        _check_event(kind, index, event, allowed)
        row = _normalized(kind, index, event, received)
        row.update(kind=kind, received_at=received_us, writer=writer, sequence=first + index)
        rows.append(row)
    if len(rows) <= _ROW_WISE_LIMIT:
        # One struct conversion beats a conversion per column for a few rows (about 3x for one).
        with contextlib.suppress(TypeError, ValueError, OverflowError, NotImplementedError):
            return pa.RecordBatch.from_struct_array(pa.array(rows, type=_STRUCTS[kind]))
    # Column by column: faster for many rows, and names the field and value that do not fit.
    columns = [
        _column(kind, field, [row.get(field.name) for row in rows], events) for field in schema
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _normalized(
    kind: str, index: int, event: Mapping[str, Any], received: dt.datetime
) -> dict[str, Any]:
    """A copy with ``event_time`` resolved and the JSON fields turned into text."""
    row = dict(event)
    name = "event_time"
    try:
        row[name] = _event_time(event.get(name), received)
        for name in _JSON_FIELDS.intersection(event):
            row[name] = _json_text(event[name])
    except (TypeError, ValueError) as error:
        raise InvalidInputError(
            f"{_describe(kind, index, event)}: field {name!r} got {event.get(name)!r}: {error}"
        ) from error
    return row


# ---------------------------------------------------------------------------------------------
# Write-ahead segments: magic, then records of [length u32][crc32 u32][payload]. A payload holds
# the batches of one append call, so a call is in the log completely or not at all.

_SEGMENT_MAGIC: Final = b"STEWWAL1"
_RECORD_HEADER: Final = struct.Struct("<II")
_PART_HEADER: Final = struct.Struct("<BBI")
_PART_COUNT: Final = struct.Struct("<H")
_WAL_DIRECTORY: Final = "_wal"
_ABANDONED_SECONDS: Final = 3600.0
_SEGMENT_SUFFIX: Final = ".wal"


def _encode_record(batches: Sequence[tuple[str, pa.RecordBatch]]) -> bytes:
    pieces = [_PART_COUNT.pack(len(batches))]
    for kind, batch in batches:
        body = batch.serialize()
        pieces.append(_PART_HEADER.pack(_KIND_CODES[kind], _SCHEMA_VERSION, body.size))
        pieces.append(body.to_pybytes())
    payload = b"".join(pieces)
    return _RECORD_HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _decode_payload(payload: memoryview) -> list[tuple[str, pa.RecordBatch]]:
    (count,) = _PART_COUNT.unpack_from(payload, 0)
    offset, batches = _PART_COUNT.size, []
    for _ in range(count):
        code, version, length = _PART_HEADER.unpack_from(payload, offset)
        offset += _PART_HEADER.size
        kind = _KINDS_BY_CODE.get(code)
        if kind is None or version != _SCHEMA_VERSION:
            raise StoreError(
                f"write-ahead record holds kind code {code} schema version {version}, which this "
                "release cannot read; open the log with the release that wrote it"
            )
        body = pa.py_buffer(payload[offset : offset + length])
        batches.append((kind, pa.ipc.read_record_batch(body, _SCHEMAS[kind])))
        offset += length
    return batches


def _decode_segment(data: bytes) -> list[tuple[str, pa.RecordBatch]]:
    """Every complete record of a segment; stops at the first torn or corrupt one.

    Everything before an fsync that returned is intact, so the first bad record is past every
    acknowledged one: discarding it and whatever follows loses nothing that was acknowledged.
    """
    if not data.startswith(_SEGMENT_MAGIC):
        return []  # crashed while creating the segment: nothing was acknowledged in it
    view, offset, batches = memoryview(data), len(_SEGMENT_MAGIC), []
    while offset + _RECORD_HEADER.size <= len(data):
        length, checksum = _RECORD_HEADER.unpack_from(data, offset)
        start, end = offset + _RECORD_HEADER.size, offset + _RECORD_HEADER.size + length
        if length == 0 or end > len(data) or zlib.crc32(view[start:end]) != checksum:
            break
        batches.extend(_decode_payload(view[start:end]))
        offset = end
    return batches


def _segments(directory: Path) -> list[tuple[int, Path]]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:  # adopted or closed meanwhile
        return []
    found = []
    for name in names:
        stem, _, suffix = name.partition(".")
        if f".{suffix}" == _SEGMENT_SUFFIX and stem.isdigit():
            found.append((int(stem), directory / name))
    return sorted(found)


# ---------------------------------------------------------------------------------------------
# Erasure tombstones: readers and rolls hide an erased entity's rows received before the erasure.

_ERASURES_FILE: Final = "_erasures.json"


def _entity_hash(entity_key: str) -> str:
    return hashlib.sha256(entity_key.encode()).hexdigest()


def _load_erasures(root: Path) -> list[dict[str, Any]]:
    try:
        document = json.loads((root / _ERASURES_FILE).read_text())
    except FileNotFoundError:
        return []
    return list(document["erasures"])


def _record_erasure(root: Path, system: str, entity_key: str, erased_us: int) -> None:
    erasures = _load_erasures(root)
    erasures.append(
        {"system": system, "entity_sha256": _entity_hash(entity_key), "erased_at_us": erased_us}
    )
    temporary = root / f".{_ERASURES_FILE}.tmp"
    with open(temporary, "w") as file:
        json.dump({"version": 1, "erasures": erasures}, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, root / _ERASURES_FILE)
    _fsync_directory(root)


def _erasure_table(erasures: list[dict[str, Any]]) -> pa.Table:
    return pa.table(
        {
            "system": pa.array([item["system"] for item in erasures], pa.string()),
            "entity_sha256": pa.array([item["entity_sha256"] for item in erasures], pa.string()),
            "erased_at": pa.array([item["erased_at_us"] for item in erasures], _TIMESTAMP),
        }
    )


def _drop_erased(table: pa.Table, erasures: list[dict[str, Any]]) -> pa.Table:
    if not erasures or table.num_rows == 0:
        return table
    latest: dict[tuple[str, str], int] = {}
    for item in erasures:
        key = (item["system"], item["entity_sha256"])
        latest[key] = max(latest.get(key, 0), item["erased_at_us"])
    systems = {system for system, _ in latest}
    if not pc.any(pc.is_in(table["system"], pa.array(sorted(systems)))).as_py():
        return table
    received = table["received_at"].cast(pa.int64()).to_pylist()
    keep = [
        key is None or received[index] > latest.get((system, _entity_hash(key)), -1)
        for index, (system, key) in enumerate(
            zip(table["system"].to_pylist(), table["entity_key"].to_pylist(), strict=True)
        )
    ]
    return table.filter(pa.array(keep))


# ---------------------------------------------------------------------------------------------
# Rolling segments into Parquet

_SOURCES_KEY: Final = b"steward.sources"


def _partition_directory(root: Path, kind: str, system: str, day: dt.date) -> Path:
    return root / f"kind={kind}" / f"system={system}" / f"date={day.isoformat()}"


def _file_sources(path: Path) -> set[str]:
    metadata = pq.read_metadata(path).metadata or {}
    return set(json.loads(metadata.get(_SOURCES_KEY, b"[]")))


def _with_sources(table: pa.Table, kind: str, sources: Iterable[str]) -> pa.Table:
    metadata = {
        _SOURCES_KEY: json.dumps(sorted(sources)).encode(),
        b"steward.kind": kind.encode(),
        b"steward.schema_version": str(_SCHEMA_VERSION).encode(),
    }
    return table.replace_schema_metadata(metadata)


def _already_rolled(directory: Path, name: str, source: str) -> bool:
    """Whether an earlier, interrupted roll already put this segment's rows in the partition."""
    if (directory / name).exists():
        return True
    # Compaction may have merged the earlier file away; its footer still names the segment.
    return any(source in _file_sources(path) for path in _parquet_files(directory))


def _split_by_partition(table: pa.Table) -> Iterator[tuple[str, dt.date, pa.Table]]:
    days = pc.cast(table["event_time"], pa.date32())
    keyed = table.append_column("_day", days)
    pairs = keyed.group_by(["system", "_day"]).aggregate([]).to_pylist()
    for pair in sorted(pairs, key=lambda item: (item["system"], item["_day"])):
        mask = pc.and_(
            pc.equal(keyed["system"], pair["system"]), pc.equal(keyed["_day"], pair["_day"])
        )
        yield pair["system"], pair["_day"], table.filter(mask)


def _roll_segment(
    root: Path, writer: str, number: int, path: Path, crash: _CrashPoint, *, recovering: bool
) -> None:
    """Write a sealed segment's rows into Parquet, then delete the segment.

    File names derive from (writer, segment number), so a roll repeated after a crash rewrites
    the same names; ``recovering`` also checks compacted footers so no row lands twice.
    """
    batches: dict[str, list[pa.RecordBatch]] = {}
    for kind, batch in _decode_segment(path.read_bytes()):
        batches.setdefault(kind, []).append(batch)
    source, name = f"{writer}:{number}", f"part-{writer}-{number:012d}.parquet"
    with _maintenance_lock(root, exclusive=False):
        erasures = _load_erasures(root)
        for kind, kind_batches in batches.items():
            table = _drop_erased(pa.Table.from_batches(kind_batches), erasures)
            for system, day, rows in _split_by_partition(table):
                directory = _partition_directory(root, kind, system, day)
                if recovering and directory.is_dir() and _already_rolled(directory, name, source):
                    continue
                _make_directories(directory)
                rows = _with_sources(rows.drop_columns(list(_PARTITION_COLUMNS)), kind, [source])
                _write_parquet_atomically(rows, directory / name, crash, "roll.temp-written")
                crash.hit("roll.partition-renamed")
        crash.hit("roll.before-segment-delete")
        path.unlink()
        _fsync_directory(path.parent)


def _try_lock(path: Path) -> int | None:
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


def _remove_if_abandoned(directory: Path) -> None:
    """Remove a writer directory that never got its LOCK (the writer died while claiming it).

    Such a directory holds no segment: a writer creates segments only after its LOCK. The age
    check leaves alone a writer that is claiming its directory right now.
    """
    with contextlib.suppress(FileNotFoundError):
        stale = time.time() - directory.stat().st_mtime > _ABANDONED_SECONDS
        if stale and not (directory / "LOCK").exists() and not _segments(directory):
            shutil.rmtree(directory, ignore_errors=True)


def _adopt_orphans(root: Path, own_writer: str | None, crash: _CrashPoint) -> int:
    """Roll the segments of writers that died (their lock is free); return how many were adopted."""
    wal = root / _WAL_DIRECTORY
    if not wal.is_dir():
        return 0
    adopted = 0
    for directory in sorted(wal.iterdir()):
        if directory.name == own_writer or not directory.is_dir():
            continue
        descriptor = _try_lock(directory / "LOCK")
        if descriptor is None:
            _remove_if_abandoned(directory)
            continue
        try:
            for number, path in _segments(directory):
                _roll_segment(root, directory.name, number, path, crash, recovering=True)
            shutil.rmtree(directory)
            _fsync_directory(wal)
            adopted += 1
        finally:
            os.close(descriptor)
    return adopted


# ---------------------------------------------------------------------------------------------
# The writer: group commit and background rolling


def _new_writer_id() -> str:
    host = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:32] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


class _Writer:
    """One process's own segment directory, with group commit and a background roll thread.

    Group commit without a commit thread: the first caller that finds no write in progress
    becomes the leader, writes every pending record and fsyncs once; callers that arrive during
    that fsync queue their records for the next leader. Handing the write to a separate thread
    instead costs a GIL hand-off per commit, which under load is the dominant cost.
    """

    def __init__(
        self,
        root: Path,
        writer_id: str,
        segment_bytes: int,
        segment_seconds: float,
        crash: _CrashPoint,
        fsync: bool = True,
    ) -> None:
        self.root, self.writer_id, self._crash = root, writer_id, crash
        self._fsync = fsync
        self._segment_bytes, self._segment_seconds = segment_bytes, segment_seconds
        self.directory = root / _WAL_DIRECTORY / writer_id
        self._lock_descriptor = self._claim_directory()
        existing = _segments(self.directory)
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
        self._stamp_lock, self._roll_mutex = threading.Lock(), threading.Lock()
        self._last_received_us, self._next_sequence = 0, 0
        self._roll_wakeup = threading.Event()
        self._roll_thread = threading.Thread(
            target=self._roll_loop, name=f"steward-roll-{writer_id}", daemon=True
        )
        self._roll_thread.start()

    def _claim_directory(self) -> int:
        _make_directories(self.directory)
        # Lock a temporary file, then rename it to LOCK: an adopter never sees an unlocked LOCK.
        temporary = self.directory / f"LOCK.{secrets.token_hex(4)}"
        descriptor = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        holder = _try_lock(self.directory / "LOCK")
        if holder is None and (self.directory / "LOCK").exists():
            os.close(descriptor)
            temporary.unlink()
            raise ConflictError(
                f"event log writer {self.writer_id!r} is already open under {self.root}; give "
                "each process its own writer_id (or leave it unset for a fresh one)"
            )
        # Keep holding a stale LOCK until ours replaces it, so no adopter slips in between.
        os.replace(temporary, self.directory / "LOCK")
        _fsync_directory(self.directory)
        if holder is not None:
            os.close(holder)
        return descriptor

    # -- stamping and submitting

    def stamp(self, count: int) -> tuple[int, int]:
        """Receive time (never going backwards) and the first of ``count`` sequence numbers."""
        with self._stamp_lock:
            now = time.time_ns() // 1000
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

    def _raise_if_unusable(self) -> None:
        if self._failure is not None:
            raise StoreError(str(self._failure))
        if self._closing:
            raise StoreError(f"event log writer {self.writer_id!r} is closed; open a new EventLog")

    def _lead(self, action: Callable[[], None]) -> None:
        """Run ``action`` as the only writer; called and returns with the mutex held."""
        self._writing = True
        self._mutex.release()
        try:
            action()
        except OSError as error:
            self._failure = self._failure_for(error)
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
            "fix the permissions, then open a new EventLog (it recovers every acknowledged "
            "event)"
        )

    # -- the current segment (only the leader touches it)

    def _open_segment(self) -> None:
        self._segment_number += 1
        self._segment_path = self.directory / f"{self._segment_number:012d}{_SEGMENT_SUFFIX}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        self._segment_descriptor = os.open(self._segment_path, flags, 0o644)
        os.write(self._segment_descriptor, _SEGMENT_MAGIC)
        os.fsync(self._segment_descriptor)
        _fsync_directory(self.directory)
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
            _sync_data(self._segment_descriptor)
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
        with self._roll_mutex:
            while True:
                with self._mutex:
                    if not self._sealed:
                        return
                    number, path, recovering = self._sealed[0]
                _roll_segment(
                    self.root, self.writer_id, number, path, self._crash, recovering=recovering
                )
                with self._mutex:
                    self._sealed.pop(0)

    def _roll_loop(self) -> None:
        adopt_after = 0.0  # adopt orphans at start, then once a minute
        while not self._stopping:
            try:
                self.seal(only_if_due=True)  # a quiet segment still rolls after segment_seconds
                self.roll_sealed()
                if time.monotonic() >= adopt_after:
                    _adopt_orphans(self.root, self.writer_id, self._crash)
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
                _fsync_directory(self.directory.parent)
        finally:
            os.close(self._lock_descriptor)
        if self._failure is not None:
            raise StoreError(str(self._failure))


# ---------------------------------------------------------------------------------------------
# Reading

_HIVE_OPTIONS: Final = (
    "hive_partitioning = true, union_by_name = true, hive_types_autocast = false, "
    "hive_types = {'kind': VARCHAR, 'system': VARCHAR, 'date': DATE}"
)
_ERASURE_FILTER: Final = (
    "NOT EXISTS (SELECT 1 FROM erasures AS e WHERE e.system = t.system "
    "AND e.entity_sha256 = sha256(t.entity_key) AND t.received_at <= e.erased_at)"
)


def _parquet_files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.glob("*.parquet") if not path.name.startswith("."))


def _day_of(directory: Path) -> dt.date | None:
    try:
        return dt.date.fromisoformat(directory.name.removeprefix("date="))
    except ValueError:
        return None


def _partitions(root: Path, kind: str, system: str | None = None) -> Iterator[tuple[Path, dt.date]]:
    """(date directory, day) of every partition of a kind, optionally of one system."""
    kind_directory = root / f"kind={kind}"
    pattern = f"system={system}" if system is not None else "system=*"
    for system_directory in sorted(kind_directory.glob(pattern)):
        for date_directory in sorted(system_directory.glob("date=*")):
            day = _day_of(date_directory)
            if day is not None and date_directory.is_dir():
                yield date_directory, day


def _partition_files(
    root: Path, kind: str, system: str | None, first: dt.date | None, last: dt.date | None
) -> list[Path]:
    files: list[Path] = []
    for directory, day in _partitions(root, kind, system):
        if (first is None or day >= first) and (last is None or day <= last):
            files.extend(_parquet_files(directory))
    return files


def _read_tail(root: Path) -> dict[str, pa.Table]:
    """Rows still in write-ahead segments, of every writer, alive or dead.

    Read before listing Parquet files: a segment rolled meanwhile then shows up in both (and
    deduplication collapses it) rather than in neither.
    """
    batches: dict[str, list[pa.RecordBatch]] = {kind: [] for kind in EVENT_KINDS}
    wal = root / _WAL_DIRECTORY
    for directory in sorted(wal.iterdir()) if wal.is_dir() else []:
        for _, path in _segments(directory):
            try:
                data = path.read_bytes()
            except FileNotFoundError:  # rolled and deleted since the listing
                continue
            for kind, batch in _decode_segment(data):
                batches[kind].append(batch)
    return {
        kind: pa.Table.from_batches(items, schema=_SCHEMAS[kind]) for kind, items in batches.items()
    }


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _utc(moment: dt.datetime, what: str) -> dt.datetime:
    if not isinstance(moment, dt.datetime) or moment.tzinfo is None:
        raise InvalidInputError(
            f"{what} {moment!r} must be a timezone-aware datetime, e.g. datetime.now(timezone.utc)"
        )
    return moment.astimezone(dt.UTC)


def _relation_sql(kind: str, files: list[Path], conditions: list[str], erasures: bool) -> str:
    """SQL for one kind's rows: segments plus Parquet, erasures hidden, duplicates collapsed."""
    columns = ", ".join(f'"{name}"' for name in _SCHEMAS[kind].names)
    sources = [f"SELECT {columns} FROM tail_{kind}"]
    if files:
        listing = ", ".join(_sql_text(str(path)) for path in files)
        sources.append(f"SELECT {columns} FROM read_parquet([{listing}], {_HIVE_OPTIONS})")
    where = [*conditions, _ERASURE_FILTER] if erasures else conditions
    order = "DESC" if kind in _LAST_WRITE_WINS else "ASC"
    keys = ", ".join(f'"{key}"' for key in _DEDUPE_KEYS[kind])
    return (
        f"SELECT {columns} FROM ({' UNION ALL BY NAME '.join(sources)}) AS t "
        f"WHERE {' AND '.join(where) or 'true'} "
        f"QUALIFY row_number() OVER (PARTITION BY {keys} "
        f'ORDER BY "received_at" {order}, "writer" {order}, "sequence" {order}) = 1'
    )


def _fetch(relation: duckdb.DuckDBPyRelation) -> pa.Table:
    # duckdb 1.x returns a Table from arrow(); 2.x a reader, with to_arrow_table() for a Table.
    fetch = getattr(relation, "to_arrow_table", None)
    result = fetch() if fetch is not None else relation.arrow()
    return result if isinstance(result, pa.Table) else result.read_all()


def _conform(table: pa.Table, kind: str) -> pa.Table:
    schema = _SCHEMAS[kind]
    return table.select(schema.names).cast(schema)


# ---------------------------------------------------------------------------------------------
# Maintenance


def _drop_partition(directory: Path) -> None:
    """Rename out of sight first, so readers see the whole partition or none of it."""
    trash = directory.with_name(f".trash-{directory.name}-{secrets.token_hex(4)}")
    os.rename(directory, trash)
    _fsync_directory(directory.parent)
    shutil.rmtree(trash)


def _remove_leftovers(directory: Path, pattern: str) -> None:
    """Remove what an interrupted operation left (hidden temporaries, renamed-away partitions)."""
    for path in directory.glob(pattern):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _without_superseded(files: list[Path]) -> list[Path]:
    """Delete files whose segments a compacted file already holds (a compaction crashed)."""
    sourced = sorted(
        ((path, _file_sources(path)) for path in files), key=lambda item: -len(item[1])
    )
    kept: list[tuple[Path, set[str]]] = []
    for path, sources in sourced:
        if sources and any(sources <= other for _, other in kept):
            path.unlink()
        else:
            kept.append((path, sources))
    return sorted(path for path, _ in kept)


def _rewrite_without(path: Path, entity_key: str) -> int:
    """Rewrite one file without an entity's rows, atomically; return how many rows went."""
    table = pq.read_table(path, partitioning=None)  # keeps the footer's segment sources
    erased = pc.fill_null(pc.equal(table["entity_key"], entity_key), False)
    kept = table.filter(pc.invert(erased))
    if kept.num_rows == 0:
        path.unlink()
        _fsync_directory(path.parent)
    elif kept.num_rows < table.num_rows:
        _write_parquet_atomically(kept, path, _CrashPoint(None))
    return table.num_rows - kept.num_rows


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


def _as_day(value: dt.date | str, what: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return _utc(value, what).date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(
            f"{what} {value!r} is not a date; pass a datetime.date or 'YYYY-MM-DD'"
        ) from error


# ---------------------------------------------------------------------------------------------
# The public object

_DEFAULT_SEGMENT_BYTES: Final = 64 * 2**20
_DEFAULT_SEGMENT_SECONDS: Final = 60.0
_READ_ATTEMPTS: Final = 5


class EventLog:
    """The append-only, durable log of predictions, shadow scores and outcomes under one root.

    ``append`` returns once its events survive ``kill -9``; ``scan``, ``count`` and ``query``
    see every acknowledged event exactly once (by the rules in ``docs/events.md``). Each process
    writes only its own files, so API replicas can share a root. Reading needs no writer: an
    ``EventLog`` that never appends creates nothing on disk.

    Example::

        with EventLog(tmp_path / "events") as log:
            log.append([{"kind": "prediction", "system": "churn", "id": "p1", "score": 0.9}])
            log.append([{"kind": "outcome", "system": "churn", "id": "o1",
                         "prediction_id": "p1", "value": 1.0}])
            table = log.scan("prediction", "churn")   # pyarrow.Table, PREDICTION_SCHEMA
            log.query("SELECT count(*) AS n FROM outcomes")
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        writer_id: str | None = None,
        segment_bytes: int = _DEFAULT_SEGMENT_BYTES,
        segment_seconds: float = _DEFAULT_SEGMENT_SECONDS,
        fsync: bool = True,
    ) -> None:
        # fsync=False acknowledges once the bytes are written to the operating system: that still
        # survives kill -9 of the process, but not a crash of the machine (see docs/events.md).
        self._fsync = fsync
        if segment_bytes <= 0 or segment_seconds <= 0:
            raise InvalidInputError(
                f"segment_bytes ({segment_bytes}) and segment_seconds ({segment_seconds}) must "
                "be positive; they say when a write-ahead segment rolls into Parquet"
            )
        self.root = Path(root)
        self._writer_id = None if writer_id is None else _check_name(writer_id, "writer_id")
        self._segment_bytes, self._segment_seconds = segment_bytes, segment_seconds
        self._writer: _Writer | None = None
        self._writer_lock = threading.Lock()
        self._crash = _CrashPoint.from_environment()
        self._closed = False

    @property
    def writer_id(self) -> str | None:
        """This process's writer id (it names its files), or None before the first append.

        Example::

            log.writer_id  # 'web-1-4242-a1b2c3'
        """
        return None if self._writer is None else self._writer.writer_id

    @property
    def closed(self) -> bool:
        """True once ``close()`` ran: appends are refused, reads still work."""
        return self._closed

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open_writer(self) -> _Writer:
        with self._writer_lock:
            if self._closed:
                raise StoreError(f"the event log at {self.root} is closed; open a new EventLog")
            if self._writer is None:
                self._writer = _Writer(
                    self.root,
                    self._writer_id or _new_writer_id(),
                    self._segment_bytes,
                    self._segment_seconds,
                    self._crash,
                    self._fsync,
                )
            return self._writer

    def append(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Append events durably and atomically: all of them are stored, or (on error) none.

        Returns once the events are fsynced; concurrent callers share one fsync. ``kind``,
        ``system`` and ``id`` are required; ``event_time`` defaults to now; ``received_at``,
        ``writer`` and ``sequence`` are stamped here.

        Example::

            log.append([{"kind": "prediction", "system": "churn", "id": "p1",
                         "entity_key": "c42", "model_version": 3, "inputs": {"tenure": 4},
                         "score": 0.81, "decision": "call", "holdout": False}])
        """
        batch = events if isinstance(events, list) else list(events)
        if not batch:
            return
        by_kind: dict[str, list[Mapping[str, Any]]] = {}
        for index, event in enumerate(batch):
            if not isinstance(event, Mapping):
                raise InvalidInputError(
                    f"event {index} of the append is a {type(event).__name__}, not a mapping; "
                    "pass dicts with 'kind', 'system' and 'id'"
                )
            by_kind.setdefault(_check_kind(event.get("kind")), []).append(event)
        writer = self._open_writer()
        received_us, sequence = writer.stamp(len(batch))
        parts = []
        for kind, of_kind in by_kind.items():
            parts.append(
                (kind, _encode_kind(kind, of_kind, received_us, writer.writer_id, sequence))
            )
            sequence += len(of_kind)
        writer.submit(_encode_record(parts))

    def flush(self) -> None:
        """Roll this process's segments into Parquet now, and those of writers that died.

        Example::

            log.flush()  # afterwards every event this process acknowledged is in Parquet
        """
        writer = self._writer
        if writer is not None:
            writer.seal()
            writer.roll_sealed()
        _adopt_orphans(self.root, None if writer is None else writer.writer_id, self._crash)

    def close(self) -> None:
        """Roll everything this process wrote into Parquet and release its writer directory.

        Example::

            log.close()  # safe to call twice
        """
        with self._writer_lock:
            self._closed, writer, self._writer = True, self._writer, None
        if writer is not None:
            writer.close()

    # -- reading

    def _run(self, build: Callable[[duckdb.DuckDBPyConnection], pa.Table]) -> pa.Table:
        failure: duckdb.Error | None = None
        for _ in range(_READ_ATTEMPTS):
            with duckdb.connect() as connection:
                connection.execute("SET TimeZone = 'UTC'")
                try:
                    return build(connection)
                except duckdb.IOException as error:
                    # Compaction or retention removed a listed file before it was read: list again.
                    failure = error
        raise StoreError(
            f"could not read the event log at {self.root} after {_READ_ATTEMPTS} attempts: "
            f"{failure}; check that the files are readable"
        )

    def _relations(
        self,
        connection: duckdb.DuckDBPyConnection,
        kinds: Sequence[str],
        system: str | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> dict[str, str]:
        tail = _read_tail(self.root)  # first: see _read_tail
        erasures = _load_erasures(self.root)
        if erasures:
            connection.register("erasures", _erasure_table(erasures))
        conditions = [] if system is None else [f"t.system = {_sql_text(system)}"]
        first = last = None
        if start is not None:
            first = _utc(start, "start").date()
            conditions.append(f"t.event_time >= {_sql_text(_utc(start, 'start').isoformat())}")
        if end is not None:
            last = _utc(end, "end").date()
            conditions.append(f"t.event_time < {_sql_text(_utc(end, 'end').isoformat())}")
        relations = {}
        for kind in kinds:
            connection.register(f"tail_{kind}", tail[kind])
            files = _partition_files(self.root, kind, system, first, last)
            relations[kind] = _relation_sql(kind, files, conditions, bool(erasures))
        return relations

    def scan(
        self,
        kind: str,
        system: str,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> pa.Table:
        """Events of one kind and system with ``start <= event_time < end``, in event-time order.

        Example::

            log.scan("outcome", "churn", start=datetime(2026, 11, 1, tzinfo=timezone.utc))
        """
        kind, system = _check_kind(kind), _check_name(system, "system")

        def build(connection: duckdb.DuckDBPyConnection) -> pa.Table:
            relation = self._relations(connection, [kind], system, start, end)[kind]
            return _conform(_fetch(connection.sql(f'{relation} ORDER BY "event_time", "id"')), kind)

        return self._run(build)

    def count(self, kind: str, system: str) -> int:
        """How many distinct events of a kind a system has (after deduplication and erasure).

        Example::

            log.count("prediction", "churn")  # 1
        """
        kind, system = _check_kind(kind), _check_name(system, "system")

        def build(connection: duckdb.DuckDBPyConnection) -> pa.Table:
            relation = self._relations(connection, [kind], system)[kind]
            return _fetch(connection.sql(f"SELECT count(*) AS n FROM ({relation})"))

        return int(self._run(build)["n"][0].as_py())

    def existing_ids(self, kind: str, system: str, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` a system has logged as events of ``kind`` (erased ones excluded).

        Example::

            log.existing_ids("prediction", "churn", ["p1", "nope"])  # {"p1"}
        """
        kind, system = _check_kind(kind), _check_name(system, "system")
        wanted = pa.table({"id": pa.array(sorted(set(ids)), pa.string())})
        if wanted.num_rows == 0:
            return set()

        def build(connection: duckdb.DuckDBPyConnection) -> pa.Table:
            relation = self._relations(connection, [kind], system)[kind]
            connection.register("wanted_ids", wanted)
            return _fetch(
                connection.sql(
                    f'SELECT DISTINCT t."id" FROM ({relation}) AS t JOIN wanted_ids USING ("id")'
                )
            )

        return set(self._run(build)["id"].to_pylist())

    def query(self, sql: str) -> pa.Table:
        """Run DuckDB SQL over the views ``predictions``, ``shadows`` and ``outcomes``.

        The views carry every column of the kind's schema, deduplicated and with erasures applied.

        Example::

            log.query("SELECT decision, count(*) AS n FROM predictions GROUP BY decision")
        """

        def build(connection: duckdb.DuckDBPyConnection) -> pa.Table:
            for kind, relation in self._relations(connection, EVENT_KINDS).items():
                connection.execute(f"CREATE TEMP VIEW {_VIEW_NAMES[kind]} AS {relation}")
            try:
                result = connection.sql(sql)
                if result is None:
                    raise InvalidInputError(f"query {sql!r} returns no rows; pass a SELECT")
                return _fetch(result)
            except duckdb.IOException:
                raise
            except duckdb.Error as error:
                raise InvalidInputError(
                    f"query failed: {error}; the views are predictions, shadows and outcomes"
                ) from error

        return self._run(build)

    # -- retention, erasure, compaction

    def delete_before(self, cutoff: dt.date | dt.datetime) -> int:
        """Drop every date partition strictly before ``cutoff``'s UTC day; return how many.

        Example::

            log.delete_before(datetime.now(timezone.utc) - timedelta(days=180))
        """
        cutoff_day = _as_day(cutoff, "cutoff")
        dropped = 0
        with _maintenance_lock(self.root, exclusive=True):
            for kind in EVENT_KINDS:
                for directory, day in list(_partitions(self.root, kind)):
                    if day < cutoff_day:
                        _drop_partition(directory)
                        dropped += 1
                for system_directory in (self.root / f"kind={kind}").glob("system=*"):
                    _remove_leftovers(system_directory, ".trash-*")
        return dropped

    def erase(self, system: str, entity_key: str) -> int:
        """Remove every event of one entity in a system (GDPR erasure); return rows rewritten away.

        Readers stop seeing the entity's rows the moment its tombstone is stored; the files are
        then rewritten without them, one atomic rename each. Running it again finishes an
        interrupted erasure.

        Example::

            log.erase("churn", "customer-42")
        """
        system = _check_name(system, "system")
        if not isinstance(entity_key, str) or not entity_key:
            raise InvalidInputError(f"entity_key {entity_key!r} must be a non-empty string")
        removed = 0
        with _maintenance_lock(self.root, exclusive=True):
            _record_erasure(self.root, system, entity_key, time.time_ns() // 1000)
            self._crash.hit("erase.after-tombstone")
            for kind in EVENT_KINDS:
                files = _partition_files(self.root, kind, system, None, None)
                for path in _files_holding(files, entity_key):
                    removed += _rewrite_without(path, entity_key)
        return removed

    def compact(self, kind: str, system: str, date: dt.date | str) -> int:
        """Merge the Parquet files of one partition into one; return how many files were merged.

        Example::

            log.compact("prediction", "churn", date(2026, 11, 22))
        """
        kind, system = _check_kind(kind), _check_name(system, "system")
        directory = _partition_directory(self.root, kind, system, _as_day(date, "date"))
        with _maintenance_lock(self.root, exclusive=True):
            if not directory.is_dir():
                return 0
            _remove_leftovers(directory, ".*.tmp")
            files = _without_superseded(_parquet_files(directory))
            if len(files) < 2:
                return 0
            tables = [pq.read_table(path, partitioning=None) for path in files]
            sources = set().union(*(_file_sources(path) for path in files))
            merged = pa.concat_tables(
                [table.replace_schema_metadata(None) for table in tables], promote_options="default"
            ).sort_by("event_time")
            target = directory / f"compact-{secrets.token_hex(8)}.parquet"
            _write_parquet_atomically(_with_sources(merged, kind, sources), target, self._crash)
            self._crash.hit("compact.before-source-delete")
            for path in files:
                path.unlink()
            _fsync_directory(directory)
        return len(files)
