"""``EventLog``: the public object of the event log, a thin front over its modules.

Appends go through ``schemas`` (checks, encoding) to this process's ``wal.Writer``; the writer
rolls segments with ``rollup``; reads are in ``read``; retention and erasure in ``retention``.
An ``on_files`` hook hears of every Parquet file those steps add or remove (``commits``).

Example::

    with EventLog("/tmp/steward-events") as log:
        log.append([{"kind": "prediction", "system": "churn", "id": "p1", "score": 0.8}])
        log.count("prediction", "churn")  # 1
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from steward.data.events import read, retention, rollup
from steward.data.events.bulk import encode_table
from steward.data.events.commits import FileCommits, FilesHook
from steward.data.events.durable import CrashPoint, maintenance_lock, try_maintenance_lock
from steward.data.events.mirror import ObjectMirror, SyncCounts
from steward.data.events.schemas import check_kind, check_name, encode_kind
from steward.data.events.wal import Writer, encode_record, new_writer_id
from steward.errors import InvalidInputError, StoreError

__all__ = ["EventLog"]

logger = logging.getLogger(__name__)

_DEFAULT_SEGMENT_BYTES: Final = 64 * 2**20
_DEFAULT_SEGMENT_SECONDS: Final = 60.0
_DEFAULT_BACKLOG_BYTES: Final = 2**30


class EventLog:
    """The append-only, durable log of predictions, shadow scores and outcomes under one root.

    ``append`` returns once its events survive ``kill -9``; ``scan``, ``count`` and ``query``
    see every acknowledged event exactly once (by the rules in ``docs/events.md``). Each process
    writes only its own files, so API replicas can share a root. Reading needs no writer: an
    ``EventLog`` that never appends creates nothing on disk.

    ``on_files(added, removed, reason)`` is called after each roll, compaction, retention run or
    erasure, with the Parquet files it added (``{path relative to the root: sha256}``) and
    removed (``[relative path]``), while no other such step can run; the workspace commits them
    to the audit log. A hook that raises is logged as a warning and loses no event.

    With ``remote`` (an fsspec URL such as ``s3://bucket/events``) the Parquet files live in the
    object store and ``root`` holds the write-ahead log and a local copy of them (``mirror``):
    a roll uploads its files before it deletes its segment, and a read first brings the copy up
    to date when it is older than ``sync_seconds``. While the store cannot be reached, appends
    still succeed until ``backlog_bytes`` of segments wait for upload. After the first read, a
    background thread keeps the copy up to date; ``close()`` stops it.

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
        on_files: FilesHook | None = None,
        remote: str | None = None,
        sync_seconds: float = 2.0,
        backlog_bytes: int = _DEFAULT_BACKLOG_BYTES,
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
        self._writer_id = None if writer_id is None else check_name(writer_id, "writer_id")
        self._segment_bytes, self._segment_seconds = segment_bytes, segment_seconds
        self._writer: Writer | None = None
        self._writer_lock = threading.Lock()
        self._crash = CrashPoint.from_environment()
        self._mirror = ObjectMirror(remote, self.root, self._crash) if remote else None
        self._commits = FileCommits(self.root, on_files, self._mirror)
        self._sync_seconds, self._backlog_bytes = sync_seconds, backlog_bytes
        self._synced_at = -float("inf")
        self._sync_mutex = threading.Lock()
        self._syncer: threading.Thread | None = None
        self._stop_syncing = threading.Event()
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

    def _open_writer(self) -> Writer:
        with self._writer_lock:
            if self._closed:
                raise StoreError(f"the event log at {self.root} is closed; open a new EventLog")
            if self._writer is None:
                writer_id = self._writer_id or new_writer_id()
                root, crash, commits = self.root, self._crash, self._commits

                def roll(number: int, path: Path, recovering: bool) -> None:
                    rollup.roll_segment(
                        root, writer_id, number, path, crash, recovering=recovering, commits=commits
                    )

                def adopt() -> int:
                    adopted = rollup.adopt_orphans(root, writer_id, crash, commits)
                    if self._mirror is not None:
                        self.refresh()  # what an earlier upload left, and other servers' files
                    return adopted

                self._writer = Writer(
                    root,
                    writer_id,
                    self._segment_bytes,
                    self._segment_seconds,
                    crash,
                    self._fsync,
                    roll,
                    adopt,
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
            by_kind.setdefault(check_kind(event.get("kind")), []).append(event)
        writer = self._open_writer()
        self._check_backlog(writer)
        received_us, sequence = writer.stamp(len(batch))
        parts = []
        for kind, of_kind in by_kind.items():
            parts.append(
                (kind, encode_kind(kind, of_kind, received_us, writer.writer_id, sequence))
            )
            sequence += len(of_kind)
        writer.submit(encode_record(parts))

    def append_table(self, kind: str, table: pa.Table | pa.RecordBatch) -> None:
        """Append the events of one kind given as columns, durably and atomically, with one fsync.

        The bulk path: the same checks and guarantees as ``append``, in whole-column passes, and
        one record batch in the write-ahead log. Columns are the kind's fields (``schema_for``);
        ``system`` and ``id`` are required, the others may be left out (``event_time`` defaults to
        now), and the JSON fields (``inputs``, ``output``) hold JSON text.

        Example::

            log.append_table("prediction", pa.table({
                "system": ["churn", "churn"], "id": ["p1", "p2"], "score": [0.2, 0.9],
                "inputs": ['{"tenure":3}', '{"tenure":40}'],
            }))
        """
        kind = check_kind(kind)
        if table.num_rows == 0:
            return
        writer = self._open_writer()
        self._check_backlog(writer)
        received_us, sequence = writer.stamp(table.num_rows)
        batch = encode_table(kind, table, received_us, writer.writer_id, sequence)
        writer.submit(encode_record([(kind, batch)]))

    def _check_backlog(self, writer: Writer) -> None:
        """Refuse appends while the object store fails and too much waits for upload."""
        refusal = self._backlog_refusal(writer)
        if refusal is not None:
            raise StoreError(refusal)

    def _backlog_refusal(self, writer: Writer) -> str | None:
        """Why appends are refused for the upload backlog, or None (also without a failure)."""
        if self._mirror is None or self._mirror.failure is None:
            return None
        waiting = writer.backlog_bytes()
        if waiting <= self._backlog_bytes:
            return None
        return (
            f"{self._mirror.failure}; {waiting / 2**20:.1f} MB of events wait for upload on "
            f"local disk, over the bound of {self._backlog_bytes / 2**20:.1f} MB "
            "(events_backlog_mb): retry once the object store answers"
        )

    def health(self) -> str | None:
        """Why appends fail now (the writer retries by itself, this call included), or None.

        Example::

            log.health()  # None, or "event log writer 'w1' could not write ...: No space left"
        """
        self._fresh()  # with an object store: try it, at most once per sync_seconds
        writer = self._writer
        if writer is None:
            return None
        failure = writer.probe()
        return str(failure) if failure is not None else self._backlog_refusal(writer)

    def object_store(self) -> dict[str, Any] | None:
        """The object store's URL, why it last failed (or None) and the bytes waiting for upload;
        None without one.

        Example::

            log.object_store()  # {'url': 's3://events/steward', 'failure': None, 'backlog_bytes': 0}
        """
        if self._mirror is None:
            return None
        writer = self._writer
        waiting = 0 if writer is None else writer.backlog_bytes()
        return {"url": self._mirror.url, "failure": self._mirror.failure, "backlog_bytes": waiting}

    def refresh(self) -> SyncCounts:
        """Bring the local copy and the object store in step now (see ``mirror``); without an
        object store, do nothing. Raises ``StoreError`` when the store cannot be reached.

        Example::

            log.refresh()  # SyncCounts(uploaded=0, downloaded=4, dropped=1)
        """
        if self._mirror is None:
            return SyncCounts()
        with self._sync_mutex, maintenance_lock(self.root, exclusive=True):
            counts = self._mirror.sync()
            self._synced_at = time.monotonic()
            return counts

    def _fresh(self) -> None:
        """Before a read, with an object store: the first read brings the local copy up to date;
        then a background thread does, every ``sync_seconds``, so no read waits for the store
        (with ``sync_seconds`` 0, every read syncs itself)."""
        if self._mirror is None:
            return
        if self._sync_seconds > 0 and self._synced_at > -float("inf") and not self._closed:
            self._start_syncer()
            return
        if time.monotonic() - self._synced_at >= self._sync_seconds:
            self._try_sync()

    def _try_sync(self) -> None:
        """Sync unless another thread or a maintenance step is at it; a failure is logged (and
        kept for ``health``): reads answer from the local copy meanwhile."""
        assert self._mirror is not None
        if not self._sync_mutex.acquire(blocking=False):
            return  # another thread refreshes right now
        try:
            with try_maintenance_lock(self.root) as held:
                if held:
                    self._mirror.sync()
        except StoreError as error:
            logger.warning("event log at %s reads its local copy: %s", self.root, error)
        finally:
            self._synced_at = time.monotonic()
            self._sync_mutex.release()

    def _start_syncer(self) -> None:
        with self._writer_lock:
            if self._syncer is not None or self._closed:
                return
            self._syncer = threading.Thread(
                target=self._sync_loop, name="event-log-sync", daemon=True
            )
            self._syncer.start()

    def _sync_loop(self) -> None:
        while not self._stop_syncing.wait(self._sync_seconds):
            self._try_sync()

    def flush(self) -> None:
        """Roll this process's segments into Parquet now, and those of writers that died.

        Example::

            log.flush()  # afterwards every event this process acknowledged is in Parquet
        """
        writer = self._writer
        if writer is not None:
            writer.seal()
            writer.roll_sealed()
        own = None if writer is None else writer.writer_id
        rollup.adopt_orphans(self.root, own, self._crash, self._commits)
        self.refresh()

    def close(self) -> None:
        """Roll everything this process wrote into Parquet and release its writer directory.

        Example::

            log.close()  # safe to call twice
        """
        with self._writer_lock:
            self._closed, writer, self._writer = True, self._writer, None
            syncer, self._syncer = self._syncer, None
        self._stop_syncing.set()
        if syncer is not None:
            syncer.join()
        if writer is not None:
            writer.close()

    # -- reading

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
        kind, system = check_kind(kind), check_name(system, "system")
        self._fresh()
        return read.scan(self.root, kind, system, start, end)

    def scan_received(
        self,
        kind: str,
        system: str,
        after: dt.datetime | None = None,
        until: dt.datetime | None = None,
    ) -> pa.Table:
        """The events received in ``(after, until]``, deduplicated as ``scan`` does, in its order.

        It opens only the files that can hold events received after ``after``: a sync behind a
        watermark reads what is new, not the history. An event kept by its first copy (a
        prediction, a shadow score) whose older copy is stored on one of the event dates returned
        is left out, as ``scan`` leaves it out; a copy under another event date is not looked
        for (see "Reads by receive time and by id" in docs/events.md).

        Example::

            log.scan_received("prediction", "churn", after=watermark)
        """
        kind, system = check_kind(kind), check_name(system, "system")
        self._fresh()
        return read.scan_received(self.root, kind, system, after, until)

    def files_received_after(
        self, kind: str, system: str, after: dt.datetime | None = None
    ) -> list[Path]:
        """The Parquet files ``scan_received(kind, system, after)`` opens, from the listing alone.

        Example::

            log.files_received_after("prediction", "churn", watermark)  # only the new files
        """
        kind, system = check_kind(kind), check_name(system, "system")
        after_us = read.micros(after, "after")
        self._fresh()
        return read.files_received_after(self.root, kind, system, after_us)[0]

    def count(self, kind: str, system: str) -> int:
        """How many distinct events of a kind a system has (after deduplication and erasure).

        Example::

            log.count("prediction", "churn")  # 1
        """
        kind, system = check_kind(kind), check_name(system, "system")
        self._fresh()
        return read.count(self.root, kind, system)

    def existing_ids(self, kind: str, system: str, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` a system has logged as events of ``kind`` (erased ones excluded).

        Answers from the id indexes beside the Parquet files, not from the files themselves.

        Example::

            log.existing_ids("prediction", "churn", ["p1", "nope"])  # {"p1"}
        """
        kind, system = check_kind(kind), check_name(system, "system")
        self._fresh()
        return read.existing_ids(self.root, kind, system, ids)

    def query(self, sql: str) -> pa.Table:
        """Run DuckDB SQL over the views ``predictions``, ``shadows``, ``outcomes`` and ``llm_calls``.

        The views carry every column of the kind's schema, deduplicated and with erasures applied.

        Example::

            log.query("SELECT decision, count(*) AS n FROM predictions GROUP BY decision")
        """
        self._fresh()
        return read.query(self.root, sql)

    # -- retention, erasure, compaction

    def delete_before(self, cutoff: dt.date | dt.datetime, system: str | None = None) -> int:
        """Drop every date partition strictly before ``cutoff``'s UTC day, of ``system`` only
        when given; return how many.

        Example::

            log.delete_before(datetime.now(timezone.utc) - timedelta(days=180), system="churn")
        """
        if system is not None:
            system = check_name(system, "system")
        self.refresh()
        return retention.delete_before(self.root, cutoff, self._commits, system)

    def erase(self, system: str, entity_key: str) -> int:
        """Remove every event of one entity in a system (GDPR erasure); return rows rewritten away.

        Readers stop seeing the entity's rows the moment its tombstone is stored; the files are
        then rewritten without them, one atomic rename each. Running it again finishes an
        interrupted erasure.

        Example::

            log.erase("churn", "customer-42")
        """
        system = check_name(system, "system")
        if not isinstance(entity_key, str) or not entity_key:
            raise InvalidInputError(f"entity_key {entity_key!r} must be a non-empty string")
        self.refresh()
        return retention.erase(self.root, system, entity_key, self._crash, self._commits)

    def prediction_ids(self, system: str, entity_key: str) -> list[str]:
        """The ids of one entity's predictions and shadow scores (and the ``prediction_id`` of
        its outcomes) in a system, from every file and segment, erased ones included.

        Example::

            log.prediction_ids("churn", "customer-42")  # ['p1', 'p7']
        """
        system = check_name(system, "system")
        if not isinstance(entity_key, str) or not entity_key:
            raise InvalidInputError(f"entity_key {entity_key!r} must be a non-empty string")
        self.refresh()
        if not self.root.is_dir():
            return []
        return retention.prediction_ids(self.root, system, entity_key)

    def erase_predictions(self, system: str, ids: Iterable[str]) -> dict[str, int]:
        """Remove the predictions and shadow scores with these ids, and every outcome naming them
        by ``prediction_id`` (with an entity key or without); return the rows removed per kind.

        Like ``erase``: an id tombstone first (rolls drop the rows from then on), then the
        files rewritten, one atomic rename each; running it again (even with no ids) finishes
        an interrupted run.

        Example::

            log.erase_predictions("churn", ["p1", "p7"])  # {'prediction': 2, 'shadow': 0, ...}
        """
        system = check_name(system, "system")
        listed = sorted(set(ids))
        if not all(isinstance(item, str) and item for item in listed):
            raise InvalidInputError("prediction ids must be non-empty strings")
        self.refresh()
        return retention.erase_ids(self.root, system, listed, self._crash, self._commits)

    def compact(self, kind: str, system: str, date: dt.date | str) -> int:
        """Merge the Parquet files of one partition into one; return how many files were merged.

        Example::

            log.compact("prediction", "churn", date(2026, 11, 22))
        """
        kind, system = check_kind(kind), check_name(system, "system")
        day = retention.as_day(date, "date")
        self.refresh()
        return rollup.compact(self.root, kind, system, day, self._crash, self._commits)

    @contextlib.contextmanager
    def holding_files(self) -> Iterator[None]:
        """Hold off every roll, compaction, retention run and erasure on this root (of every
        process) while the block runs, so the Parquet files and their commits stand still.

        Appends go on (into write-ahead segments); their rolls wait. Creates nothing on disk.

        Example::

            with log.holding_files():
                ...  # compare the files with what the audit log committed
        """
        if not self.root.is_dir():
            yield
            return
        with maintenance_lock(self.root, exclusive=True):
            yield
