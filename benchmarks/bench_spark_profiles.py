"""Hourly profiles of 10M and 100M prediction rows: the embedded engine against Spark, same run.

For each size in ``--rows`` it generates that many predictions (``event_time`` over ``--hours``
hours in time order, ``model_version`` 1 or 2, a ``score``, ``--numeric`` skewed numeric columns
with 1% missing and ``--categorical`` text columns of Zipf-like frequencies over 60 levels, a
few unseen by the reference) as Parquet files of ``--file-rows`` rows in row groups of
``--row-group`` rows, written one row group at a time: the table is never whole in memory. Then,
each in a fresh child process, it profiles the files per hour and model version:

- embedded: ``profile_parquet`` (the columns read ``--batch-rows`` rows at a time, profiled with
  ``profile_frame``'s counting and merged as they come; one process);
- spark: ``spark.read.parquet`` + ``build_profiles_spark`` on ``--master`` with
  ``spark.driver.memory`` = ``--driver-memory`` (Steward's counting in ``mapInArrow`` tasks,
  one partial per task, bucket, column and version, merged on the driver).

Wall time includes reading the files; the Spark session is started, and its Python workers
warmed on a few rows, before timing. Peak memory is the peak, over polls every 0.2 s of
``/proc``, of the summed resident set size of the child and all its descendants: for embedded,
the one Python process; for Spark, the driver's Python process, the driver JVM (which runs the
executors in local mode) and the Python workers (their shared pages are counted once per process,
so the sum is an upper bound). ``own MB`` is the child's own ``ru_maxrss``: the embedded engine's
exact peak, Spark's driver Python. Both engines' exact fields (counts, nulls, bin counts) are
checked equal. The files are removed at the end unless
``--keep``. Linux only (``/proc``). Needs PySpark and Java::

    python benchmarks/bench_spark_profiles.py                       # 10M and 100M rows
    python benchmarks/bench_spark_profiles.py --rows 1000000        # a quick run
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

LEVELS = np.array([f"level-{level}" for level in range(60)])
WEIGHTS = 1.0 / np.arange(1, 61) / (1.0 / np.arange(1, 61)).sum()
START = np.datetime64("2026-11-01T00:00:00", "us")


def make_chunk(rows: int, first: int, total: int, options: Any, seed: int) -> pa.Table:
    """Rows ``first`` to ``first + rows`` of ``total``, their times inside their share of the
    hours and sorted, so the whole table is in event-time order."""
    rng = np.random.default_rng(seed)
    span = options.hours * 3_600_000_000
    low, high = span * first // total, span * (first + rows) // total
    offsets = np.sort(rng.integers(low, max(high, low + 1), size=rows))
    columns: dict[str, pa.Array] = {
        "event_time": pa.array(START + offsets, pa.timestamp("us", tz="UTC")),
        "model_version": pa.array(rng.choice([1, 2], size=rows, p=[0.3, 0.7])),
        "score": pa.array(rng.beta(2.0, 5.0, size=rows)),
    }
    for index in range(options.numeric):
        values = rng.lognormal(mean=index % 3, sigma=1.0, size=rows)
        values[rng.random(rows) < 0.01] = np.nan
        columns[f"x{index}"] = pa.array(values, from_pandas=True)
    for index in range(options.categorical):
        columns[f"c{index}"] = pa.array(LEVELS[rng.choice(60, size=rows, p=WEIGHTS)])
    return pa.table(columns)


def write_files(folder: Path, total: int, options: Any) -> float:
    """Write ``total`` rows as Parquet, one row group at a time; return the seconds taken."""
    began, written, writer, number = time.perf_counter(), 0, None, 0
    last_report = began
    while written < total:
        rows = min(options.row_group, total - written)
        chunk = make_chunk(rows, written, total, options, seed=1000 + number)
        if writer is None or written % options.file_rows == 0:
            if writer is not None:
                writer.close()
            path = folder / f"part-{written // options.file_rows:04d}.parquet"
            writer = pq.ParquetWriter(path, chunk.schema, compression="snappy")
        writer.write_table(chunk, row_group_size=options.row_group)
        written += rows
        number += 1
        if time.perf_counter() - last_report > 15 or written == total:
            last_report = time.perf_counter()
            elapsed = last_report - began
            print(
                f"  generating: {written:,}/{total:,} rows ({written / total:.0%}), "
                f"{elapsed:.0f} s, {written / elapsed:,.0f} rows/s",
                flush=True,
            )
    assert writer is not None
    writer.close()
    return time.perf_counter() - began


def reference_binnings(options: Any) -> dict[str, Any]:
    from steward.data.profiles import fit_binnings

    reference = make_chunk(50_000, 0, 50_000, options, seed=1).drop_columns(
        ["event_time", "model_version"]
    )
    binnings = fit_binnings(reference, max_categories=50)
    return {name: binning.to_dict() for name, binning in binnings.items()}


# --- the measured child processes --------------------------------------------------------------


def digest(rows: list[Any]) -> dict[str, Any]:
    """The exact fields of every profile row, hashed, so two engines can be compared."""
    keyed = sorted(
        (
            row.column,
            row.bucket_start.isoformat(),
            row.model_version,
            row.profile.count,
            row.profile.null_count,
            row.profile.unseen_count,
            row.profile.bin_counts.tolist(),
        )
        for row in rows
    )
    text = json.dumps(keyed).encode()
    counted = sum(row.profile.count for row in rows if row.column == rows[0].column)
    return {"profile_rows": len(rows), "counted": counted, "sha": hashlib.sha256(text).hexdigest()}


def reporter(total: int, engine: str) -> Any:
    """A progress line to stderr every 10 s: rows done, share, rate."""
    began = time.perf_counter()
    state = {"done": 0, "last": began}

    def report(rows: int) -> None:
        state["done"] += rows
        now = time.perf_counter()
        if now - state["last"] >= 10 or state["done"] >= total:
            state["last"] = now
            done = state["done"]
            print(
                f"    {engine}: {done:,}/{total:,} rows ({done / total:.0%}), "
                f"{now - began:.0f} s, {done / (now - began):,.0f} rows/s",
                file=sys.stderr,
                flush=True,
            )

    return report


def measure_embedded(folder: Path, binnings: dict[str, Any], total: int, batch_rows: int) -> dict:
    from steward.data.profiles import profile_parquet

    began = time.perf_counter()
    rows = profile_parquet(
        folder,
        binnings,
        model_version_column="model_version",
        batch_rows=batch_rows,
        on_batch=reporter(total, "embedded"),
    )
    seconds = time.perf_counter() - began
    return {"seconds": seconds, **digest(rows)}


def spark_progress(context: Any, stop: threading.Event) -> None:
    """Tasks done of the running stages, to stderr every 10 s."""
    began = time.perf_counter()
    tracker = context.statusTracker()
    while not stop.wait(10):
        stages = [tracker.getStageInfo(stage) for stage in tracker.getActiveStageIds()]
        done = sum(stage.numCompletedTasks for stage in stages if stage)
        tasks = sum(stage.numTasks for stage in stages if stage)
        print(
            f"    spark: {done}/{tasks} tasks of the running stage, "
            f"{time.perf_counter() - began:.0f} s",
            file=sys.stderr,
            flush=True,
        )


def measure_spark(folder: Path, binnings: dict[str, Any], options: Any) -> dict:
    from steward.data.profiles.spark import build_profiles_spark, spark_session

    config = {"spark.driver.memory": options.driver_memory, "spark.ui.enabled": "false"}
    started = time.perf_counter()
    spark = spark_session(master=options.master, config=config)
    spark.sparkContext.setLogLevel("ERROR")
    first = sorted(folder.glob("*.parquet"))[0]
    build_profiles_spark(  # warm-up: the JVM's first job and the Python workers' imports
        spark.read.parquet(str(first)).limit(20_000), binnings, model_version_column="model_version"
    )
    session_seconds = time.perf_counter() - started
    stop = threading.Event()
    threading.Thread(target=spark_progress, args=(spark.sparkContext, stop), daemon=True).start()
    began = time.perf_counter()
    frame = spark.read.parquet(str(folder))
    partitions = frame.rdd.getNumPartitions()
    rows = build_profiles_spark(frame, binnings, model_version_column="model_version")
    seconds = time.perf_counter() - began
    stop.set()
    result = {
        "seconds": seconds,
        "session_seconds": session_seconds,
        "partitions": partitions,
        "driver_memory": spark.conf.get("spark.driver.memory"),
        "version": spark.version,
        **digest(rows),
    }
    spark.stop()
    return result


def child_main(options: Any) -> None:
    from steward.data.profiles import Binning

    specs = json.loads(Path(options.binnings_file).read_text())
    binnings = {name: Binning.from_dict(spec) for name, spec in specs.items()}
    folder = Path(options.directory)
    if options.measure == "embedded":
        result = measure_embedded(folder, binnings, options.total, options.batch_rows)
    else:
        result = measure_spark(folder, binnings, options)
    result["self_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result), flush=True)


# --- the parent: memory of a process tree --------------------------------------------------------


def process_tree(root: int) -> dict[int, tuple[str, int]]:
    """``pid -> (name, resident bytes)`` of ``root`` and its descendants, from ``/proc``."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name_end = stat.rindex(")")
        names[int(entry)] = stat[stat.index("(") + 1 : name_end]
        parents[int(entry)] = int(stat[name_end + 2 :].split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    found = {}
    for pid in tree:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        line = next((line for line in status.splitlines() if line.startswith("VmRSS:")), None)
        if line is not None:
            found[pid] = (names.get(pid, "?"), int(line.split()[1]) * 1024)
    return found


def run_measured(arguments: list[str]) -> dict[str, Any]:
    """Run a child, poll its process tree's memory; return its result with the peaks (MB)."""
    child = subprocess.Popen(arguments, stdout=subprocess.PIPE, text=True)
    peak_total, peaks = 0, {"python driver": 0, "jvm": 0, "python workers": 0}
    while child.poll() is None:
        tree = process_tree(child.pid)
        total = sum(size for _, size in tree.values())
        peak_total = max(peak_total, total)
        parts = {"python driver": 0, "jvm": 0, "python workers": 0}
        for pid, (name, size) in tree.items():
            kind = "python driver" if pid == child.pid else "jvm" if name == "java" else None
            parts[kind or "python workers"] += size
        peaks = {key: max(peaks[key], parts[key]) for key in peaks}
        time.sleep(0.2)
    output = child.stdout.read() if child.stdout else ""
    if child.returncode != 0:
        raise SystemExit(f"the measured run failed (exit {child.returncode}): {arguments}")
    result = dict(json.loads(output.strip().splitlines()[-1]))
    result["peak_mb"] = peak_total / 2**20
    result["peaks_mb"] = {key: value / 2**20 for key, value in peaks.items()}
    return result


def measure_size(total: int, options: Any, binnings_file: Path) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-spark-profiles-{total}-", dir=options.directory))
    try:
        print(f"{total:,} rows: writing Parquet under {folder}", flush=True)
        write_seconds = write_files(folder, total, options)
        size = sum(path.stat().st_size for path in folder.glob("*.parquet"))
        files = len(list(folder.glob("*.parquet")))
        print(f"  wrote {files} files, {size / 2**20:,.0f} MB in {write_seconds:.0f} s", flush=True)
        results = {"rows": total, "write_seconds": write_seconds, "bytes": size}
        for engine in options.engines.split(","):
            print(f"  profiling with {engine} in a fresh process", flush=True)
            arguments = [sys.executable, __file__, "--measure", engine, "--total", str(total)]
            arguments += ["--directory", str(folder), "--binnings-file", str(binnings_file)]
            arguments += ["--batch-rows", str(options.batch_rows), "--master", options.master]
            arguments += ["--driver-memory", options.driver_memory]
            results[engine] = run_measured(arguments)
            result = results[engine]
            print(
                f"  {engine}: {result['seconds']:.1f} s, {total / result['seconds']:,.0f} rows/s, "
                f"peak {result['peak_mb']:,.0f} MB",
                flush=True,
            )
        return results
    finally:
        if options.keep:
            print(f"  kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def print_table(measured: list[dict[str, Any]], options: Any) -> None:
    print()
    print(
        f"{'rows':>12} {'engine':<9} {'time s':>8} {'rows/s':>11} {'peak MB':>8} "
        f"{'JVM MB':>7} {'drv MB':>7} {'wrk MB':>7} {'own MB':>7} {'profiles':>9}"
    )
    for result in measured:
        n = result["rows"]
        for engine in options.engines.split(","):
            run = result[engine]
            peaks = run["peaks_mb"]
            print(
                f"{n:>12,} {engine:<9} {run['seconds']:>8.1f} {n / run['seconds']:>11,.0f} "
                f"{run['peak_mb']:>8,.0f} {peaks['jvm']:>7,.0f} {peaks['python driver']:>7,.0f} "
                f"{peaks['python workers']:>7,.0f} {run['self_maxrss_mb']:>7,.0f} "
                f"{run['profile_rows']:>9,}"
            )
        if {"embedded", "spark"} <= set(result):
            embedded, spark = result["embedded"], result["spark"]
            same = embedded["sha"] == spark["sha"] and embedded["counted"] == n
            print(
                f"{'':>12} spark/embedded: time {spark['seconds'] / embedded['seconds']:.2f}x, "
                f"peak memory {spark['peak_mb'] / embedded['peak_mb']:.2f}x; exact fields "
                f"equal: {same}; Spark {spark['partitions']} partitions"
            )
    for engine in options.engines.split(","):
        runs = [result[engine] for result in measured]
        if len(runs) > 1:
            print(
                f"peak memory of {engine}, largest/smallest size: "
                f"{runs[-1]['peak_mb'] / runs[0]['peak_mb']:.2f}x for "
                f"{measured[-1]['rows'] / measured[0]['rows']:.0f}x the rows"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000000,100000000", help="sizes, comma-separated")
    parser.add_argument("--numeric", type=int, default=5)
    parser.add_argument("--categorical", type=int, default=3)
    parser.add_argument("--hours", type=int, default=168)
    parser.add_argument("--row-group", type=int, default=1_000_000)
    parser.add_argument("--file-rows", type=int, default=10_000_000)
    parser.add_argument("--batch-rows", type=int, default=1_000_000)
    parser.add_argument("--engines", default="embedded,spark")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="1g")
    parser.add_argument("--directory", help="where the files go (default: the temp directory)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--measure", choices=["embedded", "spark"], help=argparse.SUPPRESS)
    parser.add_argument("--total", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--binnings-file", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.measure:
        child_main(options)
        return
    if options.file_rows % options.row_group:
        parser.error("--file-rows must be a multiple of --row-group")
    sizes = [int(size) for size in options.rows.split(",")]
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs (load {os.getloadavg()[0]:.1f}), "
        f"Python {platform.python_version()}, pyarrow {pa.__version__}; Spark on "
        f"{options.master}, spark.driver.memory={options.driver_memory}; "
        f"{1 + options.numeric + options.categorical} columns profiled (score, "
        f"{options.numeric} numeric, {options.categorical} categorical) per hour over "
        f"{options.hours} hours and per model version; embedded batches of "
        f"{options.batch_rows:,} rows",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-spark-profiles-") as scratch:
        binnings_file = Path(scratch) / "binnings.json"
        binnings_file.write_text(json.dumps(reference_binnings(options)))
        measured = [measure_size(total, options, binnings_file) for total in sizes]
    print_table(measured, options)


if __name__ == "__main__":
    main()
