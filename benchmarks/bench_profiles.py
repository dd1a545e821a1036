"""How fast profiles are built, and how fast a window is answered from stored hourly profiles.

Run:  python benchmarks/bench_profiles.py [--rows 1000000] [--large-window-rows 10000000]
          [--repeats 3] [--skip-window]

Prints:

1. rows per second for ``profile_frame`` on a frame of ``--rows`` rows x 25 columns (20 numeric,
   5 categorical) over 168 hourly buckets (columns on up to 4 threads), by the wall clock and per
   CPU-second of the process (all threads)
   (median and range of ``--repeats`` runs), next to a peer measured in the same runs: a pandas
   groupby computing count, mean, variance, min and max per bucket for the numeric columns alone
   (no bins, no sketches, no categories); then profile-mode drift at ``--rows`` rows per side
   (fit binnings, profile both sides, compare), next to exact-mode drift on the same frames
   (``steward.data.drift.compare``, the same methods) and to sorting every numeric column once;
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

from steward.data.drift import compare
from steward.data.profiles import (
    Binning,
    DatasetProfile,
    ProfileStore,
    drift_from_profiles,
    fit_binnings,
    profile_frame,
)

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


def spread(values: list[float]) -> str:
    """Median and range of a list of figures."""
    return f"{statistics.median(values):,.0f} (range {min(values):,.0f}-{max(values):,.0f})"


def measure_profile_frame(n_rows: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    table = synthetic_table(rng, n_rows, 20, 5, START, HOURS)
    binnings = fit_binnings(table.drop_columns(["event_time"]).slice(0, 100_000))
    profile_frame(table, binnings)  # warm-up: imports, lookup tables of the binnings
    frame = table.to_pandas()
    numeric = [f"x{index}" for index in range(20)]

    def pandas_peer() -> None:
        grouped = frame.groupby(frame["event_time"].dt.floor("h"))[numeric]
        grouped.agg(["count", "mean", "var", "min", "max"])

    walls, cpus, peers = [], [], []
    for _ in range(repeats):  # alternating, so load from elsewhere on the machine hits both alike
        started, cpu = time.perf_counter(), time.process_time()
        profile_frame(table, binnings)
        walls.append(n_rows / (time.perf_counter() - started))
        cpus.append(n_rows / (time.process_time() - cpu))
        peers.append(n_rows / timings(1, pandas_peer)[0])
    tracemalloc.start()
    profile_frame(table, binnings)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"profile_frame: {n_rows:,} rows x 25 columns (20 numeric, 5 categorical), {HOURS} buckets, "
        f"{repeats} runs"
    )
    print(f"  rows/s (wall clock):            {spread(walls)}")
    print(f"  rows per CPU-second (process):  {spread(cpus)}")
    ratios = [peer / wall for wall, peer in zip(walls, peers, strict=True)]
    print(
        f"  peer, pandas groupby count/mean/var/min/max of the 20 numeric columns only: "
        f"{spread(peers)} rows/s; profile_frame takes {statistics.median(ratios):.2f}x its time"
    )
    print(
        f"  tracemalloc peak during profile_frame: {peak / 2**20:,.0f} MiB "
        f"(the input table: {table.nbytes / 2**20:,.0f} MiB)"
    )


def measure_profile_mode(n_rows: int, repeats: int) -> None:
    """Profile-mode drift as bench_drift_peers runs it: fit binnings on the reference, profile both
    sides as one window each, compare; next to exact mode (``steward.data.drift.compare`` on the
    raw rows, the same methods) and to sorting every numeric column of both sides once."""
    rng = np.random.default_rng(3)
    reference = synthetic_table(rng, n_rows, 20, 5, START, 1).drop_columns(["event_time"])
    current = synthetic_table(rng, n_rows, 20, 5, START, 1).drop_columns(["event_time"])
    methods = {"numeric": ("ks", "wasserstein", "jensen_shannon"), "categorical": ("chi_square",)}

    def profile_mode() -> None:
        binnings = fit_binnings(reference)
        sides = [DatasetProfile.from_frame(side, binnings) for side in (reference, current)]
        for name, binning in binnings.items():
            for method in methods[binning.kind_]:
                drift_from_profiles(sides[0][name], sides[1][name], method)

    exact_pairs = []

    def exact_mode() -> None:
        report = compare(
            reference, current, methods=["ks", "wasserstein", "jensen_shannon", "chi_square"]
        )
        exact_pairs.append(len(report.results))

    def sort_floor() -> None:
        for side in (reference, current):
            for index in range(20):
                np.sort(side.column(f"x{index}").to_numpy())

    profile_mode()
    found, exact, floor = [], [], []
    for _ in range(repeats):  # alternating, so load from elsewhere on the machine hits all alike
        found.append(cpu_and_wall(profile_mode))
        exact.append(cpu_and_wall(exact_mode))
        floor += timings(1, sort_floor)
    walls = [wall for wall, _ in found]
    exact_walls = [wall for wall, _ in exact]
    print(
        f"profile-mode drift, {n_rows:,} rows x 25 columns per side (fit binnings on the "
        f"reference, profile both sides, KS/Wasserstein/JS and chi-square), {repeats} runs:"
    )
    print(
        f"  {statistics.median(walls):.2f} s (range {min(walls):.2f}-{max(walls):.2f}), "
        f"{statistics.median(cpu for _, cpu in found):.2f} CPU-s; sorting the 40 numeric columns "
        f"once: {statistics.median(floor):.2f} s, ratio "
        f"{statistics.median(walls) / statistics.median(floor):.1f}x"
    )
    print(
        f"  exact mode, compare() on the raw rows with the same methods ({exact_pairs[0]} column "
        f"and method pairs, p-values included): {statistics.median(exact_walls):.2f} s (range "
        f"{min(exact_walls):.2f}-{max(exact_walls):.2f}), "
        f"{statistics.median(cpu for _, cpu in exact):.2f} CPU-s; profile mode takes "
        f"{statistics.median(walls) / statistics.median(exact_walls):.2f}x its wall time"
    )


def cpu_and_wall(work: Callable[[], Any]) -> tuple[float, float]:
    """Wall-clock seconds and process CPU seconds (all threads) of one run of ``work``."""
    started, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - started, time.process_time() - cpu


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
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-window", action="store_true", help="skip the window reads (2.)")
    arguments = parser.parse_args()
    measure_profile_frame(arguments.rows, arguments.repeats)
    measure_profile_mode(arguments.rows, arguments.repeats)
    if arguments.skip_window:
        return
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
