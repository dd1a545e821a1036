"""``steward profiles``: hourly profiles by the embedded engine or by Spark.

``build TABLE`` profiles a prediction table into a profile store of one's choosing; ``refresh
SYSTEM`` brings the profiles a system's monitors read up to date from the workspace's event log.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from steward.cli.drift import column_names
from steward.cli.main import console, get_steward
from steward.errors import InvalidInputError

if TYPE_CHECKING:
    from steward.data.events import EventLog
    from steward.data.profiles import Binning, ProfileStore

__all__ = ["profiles_group"]


def engine_options(command: Any) -> Any:
    """``--engine`` and ``--spark-remote``, as every profiles command takes them."""
    command = click.option(
        "--spark-remote", help="Spark Connect URL, e.g. sc://host:15002 (default: local)."
    )(command)
    return click.option(
        "--engine",
        type=click.Choice(["duckdb", "spark"]),
        default="duckdb",
        show_default=True,
        help="spark needs pip install 'steward[spark]'.",
    )(command)


@click.group("profiles")
def profiles_group() -> None:
    """Build time-bucketed profiles of a prediction table into a profile store."""


@profiles_group.command("build")
@click.argument("table", type=click.Path(path_type=Path))
@click.option(
    "--reference",
    required=True,
    type=click.Path(path_type=Path),
    help="CSV or Parquet file the bins are fitted on.",
)
@click.option(
    "--store",
    "store_root",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder of the profile store (ProfileStore) to write to.",
)
@click.option("--system", required=True, help="Name the profiles are stored under.")
@click.option("--columns", callback=column_names, help="Profile only these, e.g. age,plan.")
@click.option("--categorical", callback=column_names, help="Numeric columns to bin as categories.")
@click.option("--time-column", default="event_time", show_default=True)
@click.option("--bucket", default="1h", show_default=True, help="e.g. 15min, 1h, 1D.")
@click.option("--model-version-column", help="Group rows per model version by this column.")
@engine_options
def profiles_build(
    table: Path,
    reference: Path,
    store_root: Path,
    system: str,
    columns: list[str] | None,
    categorical: list[str] | None,
    time_column: str,
    bucket: str,
    model_version_column: str | None,
    engine: str,
    spark_remote: str | None,
) -> None:
    """Profile the Parquet TABLE (a file or a directory of files) per time bucket.

    Bins are fitted on --reference; the rows are written to the profile store at --store, which
    ProfileStore reads back. Both engines write the same profiles (see docs/profiles.md).
    """
    from steward.data.profiles import ProfileStore, fit_binnings
    from steward.model.lineage import read_table

    if not table.exists():
        raise InvalidInputError(f"table '{table}' does not exist; pass a Parquet file or folder")
    binnings = fit_binnings(read_table(reference), columns, categorical=categorical or ())
    started = time.perf_counter()
    options: dict[str, Any] = {
        "time_column": time_column,
        "bucket": bucket,
        "model_version_column": model_version_column,
    }
    if engine == "spark":
        from steward.data.profiles.spark import build_profiles_spark, spark_session

        session = spark_session(spark_remote)
        try:
            frame = session.read.parquet(str(table))
        # A classic session raises py4j's error, a Connect one PySpark's: both mean unreadable.
        except Exception as error:
            raise _unreadable(table, error) from None
        rows = build_profiles_spark(frame, binnings, **options)
    else:
        from steward.data.profiles import profile_parquet

        rows = profile_parquet(table, binnings, **options)  # a batch of rows at a time
    path = ProfileStore(store_root).write(system, rows)
    buckets = len({row.bucket_start for row in rows})
    console.print(
        f"{len(rows)} profiles ({buckets} buckets x {len(binnings)} columns) by {engine} in "
        f"{time.perf_counter() - started:.1f}s -> {path}"
    )


def _unreadable(table: Path, error: Exception) -> InvalidInputError:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return InvalidInputError(
        f"could not read '{table}' as Parquet ({first_line}); pass a Parquet file or a folder "
        "of Parquet files"
    )


@profiles_group.command("refresh")
@click.argument("system")
@engine_options
@click.option(
    "--settle-seconds",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    help="Leave events received this recently for a later run.",
)
@click.pass_context
def profiles_refresh(
    ctx: click.Context, system: str, engine: str, spark_remote: str | None, settle_seconds: int
) -> None:
    """Profile SYSTEM's new predictions into the store its monitors read.

    Profiles the events of the workspace's event log received since the stored watermark (all of
    them the first time) per hour, with the monitors' binnings, and stores them with the new
    watermark where the monitors read them; their next run goes on from there. With --engine
    spark the event log's files are read and profiled by Spark.
    """
    from steward.monitoring.profiles import monitor_store, reference_inputs

    steward = get_steward(ctx)
    events = steward.events
    store, binnings = monitor_store(steward, events, system, reference_inputs(steward, system))
    started = time.perf_counter()
    settle = timedelta(seconds=settle_seconds)
    if engine == "spark":
        written = _refresh_with_spark(store, events, system, binnings, settle, spark_remote)
    else:
        from steward.monitoring.profiles import BUCKET

        written = store.refresh(events, system, binnings, bucket=BUCKET, settle=settle)
    console.print(
        f"{written} profiles of {system} by {engine} in {time.perf_counter() - started:.1f}s, "
        f"watermark {store.watermark(system)} -> {store.root}"
    )


def _refresh_with_spark(
    store: ProfileStore,
    events: EventLog,
    system: str,
    binnings: dict[str, Binning],
    settle: timedelta,
    remote: str | None,
) -> int:
    """``ProfileStore.refresh`` with the events read and profiled by Spark."""
    from steward.data.profiles.spark import (
        build_event_profiles_spark,
        read_event_log,
        spark_session,
    )
    from steward.monitoring.profiles import BUCKET

    watermark = store.watermark(system)
    until = datetime.now(UTC) - settle
    if watermark is not None and until <= watermark:
        return 0
    frame = read_event_log(spark_session(remote), events, system, after=watermark)
    rows, new_watermark = build_event_profiles_spark(
        frame, binnings, watermark, bucket=BUCKET, until=until
    )
    store.write(system, rows, watermark=new_watermark)
    return len(rows)
