"""Hourly profiles of a Parquet table: the embedded engine against Spark (local mode), same run.

Writes ``--rows`` synthetic predictions (``--numeric`` numeric and ``--categorical`` text columns,
spread over ``--hours`` hours) as ``--files`` Parquet files, then times, after one warm-up each:

- embedded: ``pyarrow.parquet.read_table`` + ``profile_frame`` (numpy counting, one process);
- spark: ``spark.read.parquet`` + ``build_profiles_spark`` (the same counting in ``mapInArrow``
  tasks on ``--master``, partials merged on the driver);
- peer, spark SQL: Spark's own ``groupBy(hour).agg(count, avg, var_pop, min, max)`` of the
  numeric columns only, no bins, categories or sketches: the floor a profile written as shared
  SQL could reach, before the parts SQL cannot express.

Both include reading the files; the Spark session is started before timing. Prints rows/s of each
and their ratio, and checks that both engines give the same counts. Needs PySpark and Java::

    python benchmarks/bench_profiles_spark.py
    python benchmarks/bench_profiles_spark.py --rows 200000 --repeats 1
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from steward.data.profiles import fit_binnings, profile_frame
from steward.data.profiles.spark import build_profiles_spark, spark_session


def make_table(rows: int, numeric: int, categorical: int, hours: int, seed: int = 0) -> pa.Table:
    """Predictions in event-time order over ``hours`` hours: skewed numbers with 1% missing,
    categories of Zipf-like frequencies (a few unseen by the reference)."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2026-11-01T00:00:00", "us")
    offsets = np.sort(rng.integers(0, hours * 3_600_000_000, size=rows))
    columns: dict[str, pa.Array] = {"event_time": pa.array(start + offsets, pa.timestamp("us"))}
    for index in range(numeric):
        values = rng.lognormal(mean=index % 3, sigma=1.0, size=rows)
        values[rng.random(rows) < 0.01] = np.nan
        columns[f"x{index}"] = pa.array(values, from_pandas=True)
    names = np.array([f"level-{level}" for level in range(60)])
    weights = 1.0 / np.arange(1, 61)
    for index in range(categorical):
        picks = rng.choice(60, size=rows, p=weights / weights.sum())
        columns[f"c{index}"] = pa.array(names[picks])
    return pa.table(columns)


def timed(action: Callable[[], object], repeats: int) -> tuple[float, object]:
    action()  # warm-up: imports, JIT of the JVM, first worker start
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def native_aggregates(spark: Any, folder: Path, columns: list[str]) -> list[Any]:
    """Per hour: count, mean, variance, minimum and maximum of each numeric column, in Spark SQL."""
    from pyspark.sql import functions

    frame = spark.read.parquet(str(folder))
    numeric = [name for name in columns if name.startswith("x")]
    hour = functions.date_trunc("hour", "event_time").alias("hour")
    aggregates = [functions.count("*")] + [
        function(name)
        for name in numeric
        for function in (functions.avg, functions.var_pop, functions.min, functions.max)
    ]
    return list(frame.groupBy(hour).agg(*aggregates).collect())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--numeric", type=int, default=5)
    parser.add_argument("--categorical", type=int, default=3)
    parser.add_argument("--hours", type=int, default=48)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--master", default="local[*]")
    arguments = parser.parse_args()

    table = make_table(arguments.rows, arguments.numeric, arguments.categorical, arguments.hours)
    reference = make_table(20_000, arguments.numeric, arguments.categorical, 1, seed=1)
    columns = [name for name in table.column_names if name != "event_time"]
    binnings = fit_binnings(reference, columns, max_categories=50)
    folder = Path(tempfile.mkdtemp(prefix="bench-profiles-spark-"))
    step = -(-table.num_rows // arguments.files)
    for part in range(arguments.files):
        pq.write_table(table.slice(part * step, step), folder / f"part-{part:03d}.parquet")

    spark = spark_session(master=arguments.master)
    spark.sparkContext.setLogLevel("ERROR")
    cores = spark.sparkContext.defaultParallelism
    embedded_time, embedded = timed(
        lambda: profile_frame(pq.read_table(folder), binnings), arguments.repeats
    )
    spark_time, spark_rows = timed(
        lambda: build_profiles_spark(spark.read.parquet(str(folder)), binnings),
        arguments.repeats,
    )
    sql_time, _ = timed(lambda: native_aggregates(spark, folder, columns), arguments.repeats)
    assert isinstance(embedded, list) and isinstance(spark_rows, list)
    counts = {(row.column, row.bucket_start): row.profile.count for row in embedded}
    same = all(counts[row.column, row.bucket_start] == row.profile.count for row in spark_rows)
    assert same and len(counts) == len(spark_rows), "the engines disagree on the counts"

    n = arguments.rows
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Spark "
        f"{spark.version} on {arguments.master} ({cores} task slots)"
    )
    print(
        f"{n:,} rows x {len(columns)} columns ({arguments.numeric} numeric, "
        f"{arguments.categorical} categorical), {arguments.hours} hourly buckets, "
        f"{arguments.files} Parquet files; median of {arguments.repeats}"
    )
    print(f"embedded (numpy): {embedded_time:7.2f} s  {n / embedded_time:12,.0f} rows/s")
    print(f"spark (local):    {spark_time:7.2f} s  {n / spark_time:12,.0f} rows/s")
    print(
        f"peer, spark SQL:  {sql_time:7.2f} s  {n / sql_time:12,.0f} rows/s (numeric moments only)"
    )
    print(f"spark / embedded time: {spark_time / embedded_time:.2f}x; counts equal: {same}")
    spark.stop()


if __name__ == "__main__":
    main()
