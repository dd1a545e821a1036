"""How fast profiles are built, and how fast a window is answered from stored hourly profiles.

Run:  python benchmarks/bench_profiles.py [--rows 1000000] [--large-window-rows 10000000]

Prints:

1. rows per second for ``profile_frame`` on a frame of ``--rows`` rows x 25 columns (20 numeric,
   5 categorical) over 168 hourly buckets, next to a peer measured in the same run: a pandas
   groupby computing count, mean, variance, min and max per bucket for the numeric columns alone
   (no bins, no sketches, no categories);
2. the time to answer a 7-day window (168 hourly buckets x 30 columns, one Parquet file per hourly
   build) with ``ProfileStore.read``, for stores whose buckets hold 10,000 rows in total and
   ``--large-window-rows`` rows in total (medians of 7 alternating reads): the profile read should
   not grow with the rows, except through the sketches, which grow with their log. The peer
   is DuckDB aggregating the same window's raw rows (count, mean, variance, min, max of the numeric
   columns) from Parquet, which does grow with the rows;
3. peak memory: tracemalloc's peak during ``profile_frame`` and during a window read, and the
   process's peak resident set size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from steward.data.profiles import Binning, ProfileStore, fit_binnings, profile_frame

START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
HOURS = 168
CATEGORIES = [f"level-{index}" for index in range(40)]


def timings(repeats: int, work: Callable[[], Any]) -> list[float]:
    """Wall-clock seconds of each repeat."""
    found = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        found.append(time.perf_counter() - started)
    return found


def synthetic_table(
    rng: np.random.Generator,
    n_rows: int,
    n_numeric: int,
    n_categorical: int,
    start: dt.datetime,
    hours: int,
) -> pa.Table:
    """Rows spread over `hours` hourly buckets, in time order as an event log holds them."""
    offsets = np.sort(rng.integers(0, hours * 3_600_000_000, size=n_rows))
    columns: dict[str, Any] = {
        "event_time": pa.array(
            np.datetime64(start.replace(tzinfo=None), "us") + offsets.astype("timedelta64[us]"),
            pa.timestamp("us", tz="UTC"),
        )
    }
    for index in range(n_numeric):
        values = rng.normal(index, 1.0 + index, size=n_rows)
        values[rng.random(n_rows) < 0.01] = np.nan
        columns[f"x{index}"] = values
    for index in range(n_categorical):
        codes = rng.zipf(1.5, size=n_rows) % len(CATEGORIES)
        columns[f"c{index}"] = pa.DictionaryArray.from_arrays(
            pa.array(codes.astype(np.int32)), pa.array(CATEGORIES)
        ).cast(pa.string())
    return pa.table(columns)


def measure_profile_frame(n_rows: int) -> None:
    rng = np.random.default_rng(0)
    table = synthetic_table(rng, n_rows, 20, 5, START, HOURS)
    binnings = fit_binnings(table.drop_columns(["event_time"]).slice(0, 100_000))
    seconds = min(timings(2, lambda: profile_frame(table, binnings)))
    frame = table.to_pandas()
    numeric = [f"x{index}" for index in range(20)]

    def pandas_peer() -> None:
        grouped = frame.groupby(frame["event_time"].dt.floor("h"))[numeric]
        grouped.agg(["count", "mean", "var", "min", "max"])

    peer = min(timings(2, pandas_peer))
    tracemalloc.start()
    profile_frame(table, binnings)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"profile_frame: {n_rows:,} rows x 25 columns (20 numeric, 5 categorical), {HOURS} buckets"
    )
    print(
        f"  {seconds:.2f} s = {n_rows / seconds:,.0f} rows/s = {25 * n_rows / seconds:,.0f} values/s"
    )
    print(
        f"  peer, pandas groupby count/mean/var/min/max of the 20 numeric columns only: {peer:.2f} s "
        f"({n_rows / peer:,.0f} rows/s); profile_frame takes {seconds / peer:.1f}x its time"
    )
    print(
        f"  tracemalloc peak during profile_frame: {peak / 2**20:,.0f} MiB "
        f"(the input table: {table.nbytes / 2**20:,.0f} MiB)"
    )


def build_store(
    root: Path, raw_path: Path, total_rows: int, binnings: dict[str, Binning]
) -> tuple[float, int]:
    """One profile file per hourly build, and the raw rows in one Parquet file; returns seconds
    spent profiling and the profile files' bytes."""
    rng = np.random.default_rng(1)
    store = ProfileStore(root)
    per_hour = np.bincount(rng.integers(0, HOURS, size=total_rows), minlength=HOURS)
    writer: pq.ParquetWriter | None = None
    profiling = 0.0
    for hour, n_rows in enumerate(per_hour.tolist()):
        moment = START + dt.timedelta(hours=hour)
        table = synthetic_table(rng, max(n_rows, 1), 24, 6, moment, 1)
        started = time.perf_counter()
        rows = profile_frame(table, binnings)
        profiling += time.perf_counter() - started
        store.write("bench", rows, watermark=moment)
        if writer is None:
            writer = pq.ParquetWriter(raw_path, table.schema, compression="zstd")
        writer.write_table(table)
    assert writer is not None
    writer.close()
    size = sum(path.stat().st_size for path in root.rglob("*.parquet"))
    return profiling, size


def raw_window_sql(raw_path: Path) -> str:
    aggregates = ", ".join(
        f"count(x{i}), avg(x{i}), var_pop(x{i}), min(x{i}), max(x{i})" for i in range(24)
    )
    end = START + dt.timedelta(hours=HOURS)
    return (
        f"SELECT {aggregates} FROM read_parquet('{raw_path}') "
        f"WHERE event_time >= '{START.isoformat()}' AND event_time < '{end.isoformat()}'"
    )


def measure_window(large_rows: int, workspace: Path) -> None:
    rng = np.random.default_rng(2)
    reference = synthetic_table(rng, 50_000, 24, 6, START, 1).drop_columns(["event_time"])
    binnings = fit_binnings(reference)
    end = START + dt.timedelta(hours=HOURS)
    print(
        f"7-day window: {HOURS} hourly buckets x 30 columns (24 numeric, 6 categorical), "
        "one Parquet file per hourly build"
    )
    totals = (10_000, large_rows)
    built = {}
    for total in totals:
        root, raw = workspace / f"profiles-{total}", workspace / f"raw-{total}.parquet"
        built[total] = (ProfileStore(root), raw, *build_store(root, raw, total, binnings))
        assert built[total][0].read("bench", START, end)["x0"].count == total
    # Reads alternate between the two stores, so load from elsewhere on the machine hits both alike.
    reads: dict[int, list[float]] = {total: [] for total in totals}
    for _ in range(7):
        for total in totals:
            store = built[total][0]
            reads[total] += timings(1, lambda store=store: store.read("bench", START, end))
    results = {}
    for total in totals:
        _, raw, profiling, size = built[total]
        with duckdb.connect() as connection:
            connection.execute("SET TimeZone = 'UTC'")
            sql = raw_window_sql(raw)
            raw_seconds = statistics.median(
                timings(3, lambda sql=sql: connection.sql(sql).fetchall())
            )
        results[total] = (statistics.median(reads[total]), raw_seconds)
        print(
            f"  {total:>12,} rows in the window: profile read {results[total][0] * 1000:7.0f} ms "
            f"(profiles on disk {size / 2**20:.1f} MiB, built at {total / profiling:,.0f} rows/s "
            f"in hourly batches); peer, DuckDB aggregates over raw Parquet "
            f"{raw_seconds * 1000:7.0f} ms ({raw.stat().st_size / 2**20:,.0f} MiB)"
        )
    small, large = results[10_000], results[large_rows]
    print(
        f"  {large_rows // 10_000:,}x the rows: the profile read takes {large[0] / small[0]:.2f}x "
        f"the time (the KLL sketches grow with the log of the rows), the raw peer "
        f"{large[1] / small[1]:.1f}x"
    )
    tracemalloc.start()
    ProfileStore(workspace / f"profiles-{large_rows}").read("bench", START, end)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  tracemalloc peak during a window read: {peak / 2**20:,.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--large-window-rows", type=int, default=10_000_000)
    arguments = parser.parse_args()
    measure_profile_frame(arguments.rows)
    with tempfile.TemporaryDirectory(prefix="steward-bench-profiles-") as workspace:
        measure_window(arguments.large_window_rows, Path(workspace))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak resident set size of the whole run: {peak_kib / 2**10:,.0f} MiB")
    print(
        f"(numpy {np.__version__}, pandas {pd.__version__}, pyarrow {pa.__version__}, "
        f"duckdb {duckdb.__version__})"
    )


if __name__ == "__main__":
    main()
