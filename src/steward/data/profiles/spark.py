"""Profiles computed by Spark: the same hourly profiles as the embedded engine, from a Spark frame.

Each Spark task runs Steward's own column-wise counting (``steward.data.profiles.counting``, through
``profile_frame`` and ``build_profiles``) on the Arrow batches of its partition, in
``DataFrame.mapInArrow``, and emits one serialized *partial* profile per time bucket, column and
model version it saw. The driver merges the partials of each (bucket, column, version) with
``merge_profiles``. A profile is a merge of per-partition partials by construction, so one
definition of the profile drives both engines: there is no second implementation to drift apart.

- :func:`build_profiles_spark` profiles a Spark frame (a user's prediction table) as
  ``profile_frame`` profiles a pandas or Arrow frame, and returns the same ``ProfileRow`` list.
- :func:`build_event_profiles_spark` profiles prediction events (the columns of
  ``steward.data.events.PREDICTION_SCHEMA``) received after a watermark, as ``build_profiles``
  does, and returns the rows and the new watermark.
- :func:`read_event_log` reads a system's predictions from an event log's Parquet files (and its
  write-ahead tail) as a Spark frame, with the log's erasures and deduplication applied.

Counts, null counts, bin counts, category counts, minima and maxima equal the embedded engine's
exactly; means, sums of squared deviations and bin sums are the same sums added in another order
(equal up to rounding: the tests hold them to 1e-9 and 1e-12 relative); KLL quantiles stay
within the sketch's stated rank error and the frequent-items sketch within its bounds.
``docs/profiles.md`` ("On Spark") says why and how fast.

PySpark is imported only when a function here runs; install it with
``pip install 'steward[spark]'``. A cluster is reached through Spark Connect with the same calls
(``SparkSession.builder.remote("sc://host:15002")``); the executors need Steward installed.

Example::

    from pyspark.sql import SparkSession
    spark = SparkSession.builder.master("local[2]").getOrCreate()
    frame = spark.read.parquet("predictions/")
    rows = build_profiles_spark(frame, binnings, time_column="event_time", bucket="1h")
    ProfileStore("profiles").write("churn", rows)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from steward.data.profiles.batches import ProfileMerge, gathered, profile_batches
from steward.data.profiles.binning import Binning
from steward.data.profiles.column import ColumnProfile
from steward.data.profiles.store import OUTPUT_COLUMNS, ProfileRow, build_profiles
from steward.errors import ConfigError, InvalidInputError

__all__ = [
    "PARTIAL_SCHEMA",
    "build_event_profiles_spark",
    "build_profiles_spark",
    "read_event_log",
    "require_pyspark",
    "spark_session",
]

#: The rows each Spark task emits: one partial profile per bucket, column and model version
#: (``latest_us``: the batch's newest ``received_at``, for the watermark of an event build).
PARTIAL_SCHEMA: Final = "bucket_us long, name string, version long, profile binary, latest_us long"
_ARROW_PARTIAL: Final = pa.schema(
    [
        pa.field("bucket_us", pa.int64()),
        pa.field("name", pa.string()),
        pa.field("version", pa.int64()),
        pa.field("profile", pa.binary()),
        pa.field("latest_us", pa.int64()),
    ]
)
#: Rows a task gathers before profiling them: fewer, larger calls amortize the per-call cost of
#: the counting passes; this many rows of a few columns fit in memory. A task merges its passes
#: and emits one partial per bucket, column and model version it saw.
ROWS_PER_PASS: Final = 1 << 18
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Event columns the embedded build reads (``inputs`` and ``violations`` only when present).
_EVENT_COLUMNS: Final = ("event_time", "received_at", "model_version", "inputs", "violations")
_ORDER_KEYS: Final = ("received_at", "writer", "sequence")
_MICROS_PER_DAY: Final = 86_400_000_000


def require_pyspark() -> Any:
    """The ``pyspark.sql`` module, or a clear error saying how to install it.

    >>> require_pyspark()  # doctest: +SKIP
    <module 'pyspark.sql' ...>
    """
    try:
        import pyspark.sql
    except ImportError as error:
        raise ConfigError(
            f"the Spark engine needs PySpark, which is not installed ({error}); "
            "install it with: pip install 'steward[spark]'"
        ) from error
    return pyspark.sql


def spark_session(
    remote: str | None = None,
    *,
    master: str = "local[*]",
    config: Mapping[str, str] | None = None,
) -> Any:
    """A Spark session: through Spark Connect at ``remote`` (``"sc://host:15002"``) when given,
    else a local one on ``master`` whose Python workers run this interpreter (so they import the
    same Steward), with the session time zone in UTC. ``config`` adds Spark settings to a local
    session; those read when the JVM starts (``spark.driver.memory``) apply only to the first.

    Example::

        spark = spark_session()                       # local, every core
        spark = spark_session(master="local[2]", config={"spark.driver.memory": "1g"})
        spark = spark_session("sc://spark.internal:15002")
    """
    builder = require_pyspark().SparkSession.builder
    if remote is not None:
        with _without_pandas_warning():
            return builder.remote(remote).getOrCreate()
    # The workers read this when they start; an explicit setting of the user's wins.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        builder.master(master)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
    )
    for key, value in (config or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def build_profiles_spark(
    frame: Any,
    binnings: Mapping[str, Binning],
    *,
    time_column: str = "event_time",
    bucket: str | dt.timedelta = "1h",
    model_version_column: str | None = None,
) -> list[ProfileRow]:
    """Profile each binned column of a Spark frame per time bucket, as ``profile_frame`` does.

    Returns one ``ProfileRow`` per bucket, column (in ``binnings`` order) and model version,
    ordered by column, bucket start and version (None last), merged over Spark's partitions.

    Example::

        rows = build_profiles_spark(spark.read.parquet("table/"), binnings, bucket="1h")
    """
    _check_frame(frame, [*binnings, time_column, *filter(None, [model_version_column])])
    specs = _binning_specs(binnings)
    columns = [*dict.fromkeys([time_column, *filter(None, [model_version_column]), *binnings])]

    def profile(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        # One partial per key and task, merged as the task goes: the rows collected by the
        # driver grow with partitions x buckets x columns, not with the rows of a partition.
        fitted = _binnings_from(specs)
        rows = profile_batches(
            gathered(batches, ROWS_PER_PASS),
            fitted,
            bucket=bucket,
            time_column=time_column,
            model_version_column=model_version_column,
        )
        yield _partials(rows, None)

    with _without_pandas_warning():
        partials = frame.select(*[_quoted(name) for name in columns]).mapInArrow(
            profile, PARTIAL_SCHEMA
        )
    rows, _ = _merged(partials.collect(), binnings)
    return rows


def build_event_profiles_spark(
    events: Any,
    binnings: Mapping[str, Binning],
    watermark: dt.datetime | None,
    *,
    bucket: str | dt.timedelta = "1h",
    until: dt.datetime | None = None,
) -> tuple[list[ProfileRow], dt.datetime | None]:
    """Profile the prediction events received after ``watermark``, as ``build_profiles`` does.

    ``events`` is a Spark frame with the columns of ``steward.data.events.PREDICTION_SCHEMA``
    (e.g. from :func:`read_event_log`), deduplicated. Only events with
    ``watermark < received_at <= until`` are profiled; the new watermark is ``until`` or the
    newest ``received_at`` profiled. Rows are grouped per model version, as the embedded build
    groups them.

    Example::

        events = read_event_log(spark, log, "churn")
        rows, watermark = build_event_profiles_spark(events, binnings, None)
    """
    functions = require_pyspark().functions
    _check_frame(events, ["event_time", "received_at"])
    present = set(events.columns)
    selected = [name for name in _EVENT_COLUMNS if name in present]
    selected += [name for name in OUTPUT_COLUMNS if name in binnings and name in present]
    kept = events.select(*[_quoted(name) for name in selected])
    if watermark is not None:
        kept = kept.where(functions.col("received_at") > _moment(watermark, "watermark"))
    if until is not None:
        kept = kept.where(functions.col("received_at") <= _moment(until, "until"))
    specs = _binning_specs(binnings)

    def profile(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        fitted = _binnings_from(specs)
        merge, latest = ProfileMerge(fitted), None
        for table in gathered(batches, ROWS_PER_PASS):
            rows, newest = build_profiles(table, fitted, None, bucket=bucket)
            merge.add(rows)
            latest = max(filter(None, [latest, newest]), default=None)
        yield _partials(merge.rows(), latest)

    with _without_pandas_warning():
        collected = kept.mapInArrow(profile, PARTIAL_SCHEMA).collect()
    rows, latest = _merged(collected, binnings)
    if not rows:
        return [], max(filter(None, [watermark, until]), default=None)
    return rows, until or latest


def read_event_log(
    spark: Any,
    log: Any,
    system: str,
    *,
    after: dt.datetime | None = None,
) -> Any:
    """A system's prediction events as a Spark frame, read as ``EventLog.scan_received`` reads.

    ``log`` is a ``steward.data.events.EventLog``. The Parquet files that may hold events
    received after ``after`` (every file when None) are read by Spark; the rows still in
    write-ahead segments are added from the driver. Erased rows are dropped and each event keeps
    its first copy (by ``received_at``, writer and sequence), as the embedded reader does; with
    ``after``, an event whose copy under the same event date sits in a file received before it
    is left out, as ``EventLog.scan_received`` leaves it out (Spark reads those files' ids).

    Example::

        events = read_event_log(spark, EventLog("events"), "churn")
    """
    from steward.data.events.read import files_received_after, read_tail
    from steward.data.events.schemas import PREDICTION_SCHEMA
    from steward.data.events.tombstones import load_erasures

    sql = require_pyspark()
    root = Path(log.root)
    tail = read_tail(root)["prediction"]  # first, as the embedded reader: see read_tail
    after_us = None if after is None else _micros(_moment(after, "after"))
    newer, older = files_received_after(root, "prediction", system, after_us)
    files = [str(path) for path in newer]
    tail = tail.filter(pc.equal(tail["system"], system))
    frame = _arrow_frame(spark, tail, PREDICTION_SCHEMA)
    if files:
        frame = _stored_events(spark, files, system).unionByName(frame)
    erasures = load_erasures(root)
    if erasures:
        with _without_pandas_warning():
            frame = frame.mapInArrow(_erasure_filter(erasures), frame.schema)
    order = [sql.functions.col(key).asc() for key in _ORDER_KEYS]
    window = sql.Window.partitionBy("system", "id").orderBy(*order)
    first = sql.functions.row_number().over(window)
    frame = frame.withColumn("copy_", first).where("copy_ = 1").drop("copy_")
    return _without_older_copies(spark, frame, older)


def _without_older_copies(spark: Any, frame: Any, older: Mapping[dt.date, Sequence[Any]]) -> Any:
    """``frame`` without the events a file received before the watermark holds a copy of, under
    the same event date (the embedded reader's rule; it answers from the id indexes)."""
    if not older:
        return frame
    functions = require_pyspark().functions
    copies = None
    for day, rolled in older.items():
        epoch_day = (day - _EPOCH.date()).days
        ids = spark.read.parquet(*[str(item.path) for item in rolled]).select(
            functions.col("id").alias("copy_id"), functions.lit(epoch_day).alias("copy_day")
        )
        copies = ids if copies is None else copies.unionByName(ids)
    day = functions.floor(functions.unix_micros("event_time") / _MICROS_PER_DAY)
    matches = (functions.col("id") == functions.col("copy_id")) & (day == functions.col("copy_day"))
    return frame.join(copies, matches, "left_anti")


# --- helpers --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _without_pandas_warning() -> Iterator[None]:
    """Silence PySpark's warning about the installed pandas version: the calls made under it
    pass Arrow batches only and never convert to pandas."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
        )
        yield


def _check_frame(frame: Any, needed: Sequence[str]) -> None:
    columns = getattr(frame, "columns", None)
    if not isinstance(columns, list) or not hasattr(frame, "mapInArrow"):
        raise InvalidInputError(
            f"expected a pyspark DataFrame, got {type(frame).__name__}; for pandas or Arrow "
            "frames use steward.data.profiles.profile_frame"
        )
    missing = [name for name in needed if name not in columns]
    if missing:
        raise InvalidInputError(
            f"the Spark frame lacks the columns {missing} (it has {columns}); name an existing "
            "time column and profile only columns the frame holds"
        )


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _moment(moment: dt.datetime, what: str) -> dt.datetime:
    if not isinstance(moment, dt.datetime) or moment.tzinfo is None:
        raise InvalidInputError(
            f"{what}={moment!r} must be a timezone-aware datetime; pass e.g. "
            "datetime(2026, 1, 1, tzinfo=timezone.utc)"
        )
    return moment


def _binning_specs(binnings: Mapping[str, Binning]) -> dict[str, str]:
    """The binnings as JSON text: what a Spark task unpickles and rebuilds."""
    for binning in binnings.values():
        binning.check_fitted()
    return {name: json.dumps(binning.to_dict()) for name, binning in binnings.items()}


def _binnings_from(specs: Mapping[str, str]) -> dict[str, Binning]:
    return {name: Binning.from_dict(json.loads(text)) for name, text in specs.items()}


def _partials(rows: Sequence[ProfileRow], latest: dt.datetime | None) -> pa.RecordBatch:
    """Profile rows as the rows of ``PARTIAL_SCHEMA`` (the profile as JSON, its binning left out:
    the driver holds it)."""
    latest_us = None if latest is None else _micros(latest)
    payloads = []
    for row in rows:
        data = row.profile.to_dict()
        del data["binning"]
        payloads.append(json.dumps(data, separators=(",", ":")).encode())
    return pa.RecordBatch.from_pydict(
        {
            "bucket_us": [_micros(row.bucket_start) for row in rows],
            "name": [row.column for row in rows],
            "version": [row.model_version for row in rows],
            "profile": payloads,
            "latest_us": [latest_us] * len(rows),
        },
        schema=_ARROW_PARTIAL,
    )


def _micros(moment: dt.datetime) -> int:
    return (moment - _EPOCH) // dt.timedelta(microseconds=1)


def _merged(
    partials: Sequence[Any], binnings: Mapping[str, Binning]
) -> tuple[list[ProfileRow], dt.datetime | None]:
    """The partials merged per (column, bucket, version), and the newest ``latest_us`` seen."""
    merge = ProfileMerge(binnings)
    latest: int | None = None
    for partial in partials:
        name, bucket_us, version = partial["name"], partial["bucket_us"], partial["version"]
        profile = ColumnProfile.from_dict(json.loads(partial["profile"]), binnings[name])
        start = _EPOCH + dt.timedelta(microseconds=bucket_us)
        merge.add([ProfileRow(start, name, profile, version)])
        if partial["latest_us"] is not None:
            latest = max(latest or partial["latest_us"], partial["latest_us"])
    moment = None if latest is None else _EPOCH + dt.timedelta(microseconds=latest)
    return merge.rows(), moment


def _arrow_frame(spark: Any, table: pa.Table, schema: pa.Schema) -> Any:
    """A Spark frame of an Arrow table (the write-ahead tail: small, built on the driver)."""
    if not hasattr(spark, "createDataFrame"):
        raise InvalidInputError(
            f"expected a SparkSession, got {type(spark).__name__}; pass "
            "SparkSession.builder.getOrCreate()"
        )
    try:
        with _without_pandas_warning():
            return spark.createDataFrame(table.cast(schema))
    except (TypeError, ValueError):  # PySpark before 4.0 takes pandas, not Arrow
        return spark.createDataFrame(table.cast(schema).to_pandas(), _spark_schema(schema))


def _stored_events(spark: Any, files: Sequence[str], system: str) -> Any:
    """The rows of some of a system's prediction files, with the columns of the schema.

    The partition directories, not the files, carry ``kind`` and ``system``; a column a file
    written by an older release lacks is null, as the embedded reader's union by name makes it.
    """
    from steward.data.events.schemas import PREDICTION_SCHEMA

    functions = require_pyspark().functions
    stored = spark.read.option("mergeSchema", "true").parquet(*files)
    types = dict(_spark_types(PREDICTION_SCHEMA))
    known = {"kind": functions.lit("prediction"), "system": functions.lit(system)}
    columns = [
        functions.col(_quoted(name)).cast(types[name])
        if name in stored.columns
        else known.get(name, functions.lit(None)).cast(types[name]).alias(name)
        for name in PREDICTION_SCHEMA.names
    ]
    return stored.select(*columns)


def _spark_types(schema: pa.Schema) -> list[tuple[str, str]]:
    names = {
        pa.string(): "string",
        pa.int64(): "long",
        pa.float64(): "double",
        pa.bool_(): "boolean",
    }
    return [
        (field.name, "timestamp" if pa.types.is_timestamp(field.type) else names[field.type])
        for field in schema
    ]


def _spark_schema(schema: pa.Schema) -> str:
    return ", ".join(f"{_quoted(name)} {kind}" for name, kind in _spark_types(schema))


def _erasure_filter(erasures: list[dict[str, Any]]) -> Any:
    from steward.data.events.tombstones import drop_erased

    def keep(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            kept = drop_erased(pa.Table.from_batches([batch]), erasures)
            yield from kept.to_batches()

    return keep
