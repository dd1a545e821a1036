"""The durable event log: predictions, shadow scores and outcomes, appended and read back.

``EventLog.append`` returns only after the events are fsynced in a write-ahead segment, so an
acknowledged event survives ``kill -9``. Segments roll into Parquet files partitioned by kind,
system and date, which DuckDB, Spark or any Parquet engine reads. ``docs/events.md`` describes the
envelope, the layout and the guarantees; ``docs/decisions/0002-event-log-format.md`` says why it
is built this way rather than on Delta Lake, and ``0004-event-reads-by-receive-time.md`` how reads
by receive time and by id avoid reading the history.

The modules: ``schemas`` (kinds, Arrow schemas, checking and encoding events), ``durable``
(atomic files, the maintenance lock, the clock, crash points), ``layout`` (partition directories
and file names), ``tombstones`` (erasure tombstones), ``wal`` (write-ahead records, segments, the
group-committing writer), ``index`` (id indexes beside the Parquet files), ``rollup`` (segments
to Parquet, adopting dead writers, compaction), ``read`` (scans, id checks, SQL), ``retention``
(retention, erasure), ``commits`` (telling a hook which Parquet files were added or removed),
``mirror`` (the files on an object store, a local copy kept in step) and ``log`` (``EventLog``).

Example::

    log = EventLog("/tmp/steward-events")
    log.append([{"kind": "prediction", "system": "churn", "id": "p1", "score": 0.8}])
    log.count("prediction", "churn")  # 1
    log.close()
"""

from __future__ import annotations

# The clock receive stamps and tombstones read (``durable.now_us`` looks it up here at each call),
# so a test can replace ``steward.data.events.time`` with a fake clock.
import time  # noqa: F401

from steward.data.events.durable import CRASH_AT_ENV
from steward.data.events.log import EventLog
from steward.data.events.schemas import (
    EVENT_KINDS,
    OUTCOME_SCHEMA,
    PREDICTION_SCHEMA,
    SHADOW_SCHEMA,
    schema_for,
)

__all__ = [
    "CRASH_AT_ENV",
    "EVENT_KINDS",
    "OUTCOME_SCHEMA",
    "PREDICTION_SCHEMA",
    "SHADOW_SCHEMA",
    "EventLog",
    "schema_for",
]
