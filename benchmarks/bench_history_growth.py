"""Reads that should not grow with history: a profile sync and an outcome's id check, by size.

For each history size (``--sizes``, default 100k, 1M and 5M prediction events of one system over
``--days`` days), the script builds the history, then, ``--repeats`` times: appends
``--new`` new events through ``EventLog.append`` (and rolls them), and measures, each in a fresh
child process so sizes do not contaminate each other:

- **sync**: ``ProfileStore.sync`` of the new events behind the stored watermark (what a monitor
  run does), time and peak RSS;
- **ids**: ``EventLog.existing_ids`` for ``--ids`` prediction ids (nine in ten logged, spread over
  the history; one in ten unknown), as the outcome endpoint checks them.

The history is written through the log's own rollup path (``rollup.write_rolled``: Parquet file
plus id index), one file per day partition, as a compacted history looks; its profiles are stood in
for by one stored profile row carrying the watermark at the end of the history. ``--compare``
also measures the reads these replaced: the whole-log scan the sync used to filter
(``scan`` + ``build_profiles``) and the deduplicated join ``existing_ids`` used to run, plus a raw
DuckDB read of the id column. Prints a table and the ratio largest/smallest; asserts nothing::

    python benchmarks/bench_history_growth.py --directory /tmp/bhg
    python benchmarks/bench_history_growth.py --sizes 20000,200000 --repeats 1 --compare
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from steward.data.events import PREDICTION_SCHEMA, EventLog
from steward.data.events.durable import CrashPoint
from steward.data.events.index import received_range
from steward.data.events.layout import partition_directory
from steward.data.events.rollup import write_rolled

SYSTEM = "churn"
PLANS = np.array(["basic", "pro", "family"])
MICROSECONDS_PER_DAY = 86_400_000_000


def binnings() -> dict[str, Any]:
    """The binnings of the profiled columns (fitted on a fixed sample, the same in every child)."""
    from steward.data.profiles import Binning

    rng = np.random.default_rng(0)
    return {
        "tenure": Binning().fit(rng.integers(0, 72, 5_000).astype(float)),
        "monthly": Binning().fit(rng.uniform(18, 120, 5_000)),
        "plan": Binning().fit(list(PLANS[rng.integers(0, 3, 5_000)])),
        "score": Binning().fit(rng.uniform(size=5_000)),
        "lateness_seconds": Binning().fit(rng.exponential(60.0, 5_000)),
    }


# --- building a history -----------------------------------------------------------------------


def day_table(day: int, first: dt.date, rows: int, rng: np.random.Generator) -> pa.Table:
    """``rows`` prediction events of one day, as the log stores them after a roll."""
    midnight = dt.datetime.combine(first + dt.timedelta(days=day), dt.time(), dt.UTC)
    base = int(midnight.timestamp()) * 1_000_000
    event_us = base + np.sort(rng.integers(0, MICROSECONDS_PER_DAY, rows))
    late = np.where(rng.uniform(size=rows) < 0.01, 3 * 3_600_000_000, 0)
    received_us = event_us + rng.exponential(60e6, rows).astype(np.int64) + late
    number = pc.cast(pa.array(np.arange(rows)), pa.string())
    tenure = pc.cast(pa.array(rng.integers(0, 72, rows)), pa.string())
    monthly = pc.cast(pa.array(np.round(rng.uniform(18, 120, rows), 1)), pa.string())
    plan = pa.array(PLANS[rng.integers(0, 3, rows)])
    separator = ""
    columns: dict[str, Any] = {
        "kind": pa.array(["prediction"] * rows),
        "system": pa.array([SYSTEM] * rows),
        "id": pc.binary_join_element_wise(f"h{day}-", number, separator),
        "event_time": pa.array(event_us).cast(pa.timestamp("us", tz="UTC")),
        "received_at": pa.array(received_us).cast(pa.timestamp("us", tz="UTC")),
        "writer": pa.array(["history"] * rows),
        "sequence": pa.array(np.arange(rows, dtype=np.int64)),
        "entity_key": pc.binary_join_element_wise("c", number, separator),
        "model_version": pa.array(np.full(rows, 3, dtype=np.int64)),
        "inputs": pc.binary_join_element_wise(
            '{"tenure":', tenure, ',"monthly":', monthly, ',"plan":"', plan, '"}', separator
        ),
        "score": pa.array(rng.uniform(size=rows)),
        "output": pa.nulls(rows, pa.string()),
        "decision": pa.array(np.where(rng.uniform(size=rows) < 0.3, "call", "none")),
        "holdout": pa.array(rng.uniform(size=rows) < 0.1),
        "intended_action": pa.nulls(rows, pa.string()),
        "latency_ms": pa.array(rng.uniform(1, 3, rows)),
        "violations": pa.nulls(rows, pa.string()),
    }
    return pa.Table.from_pydict(columns, schema=PREDICTION_SCHEMA)


def build_history(root: Path, size: int, days: int) -> tuple[dt.datetime, float]:
    """Write ``size`` events over ``days`` days ending yesterday; return the last receive time."""
    rng = np.random.default_rng(size)
    first = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days)
    started, last_us = time.perf_counter(), 0
    for day in range(days):
        rows = size // days + (1 if day < size % days else 0)
        table = day_table(day, first, rows, rng)
        received = received_range(table)
        directory = partition_directory(root, "prediction", SYSTEM, first + dt.timedelta(days=day))
        name = f"part-history-{day:012d}.parquet"
        write_rolled(
            directory,
            name,
            table,
            kind="prediction",
            sources=[f"history:{day}"],
            received=received,
            crash=CrashPoint(None),
        )
        last_us = max(last_us, received[1])
    end = dt.datetime.fromtimestamp(last_us / 1e6, dt.UTC)
    # The history's profiles, stood in for by one row carrying the watermark at its end.
    import pandas as pd

    from steward.data.profiles import ProfileStore, profile_frame

    frame = pd.DataFrame({"event_time": [end], "score": [0.5]})
    rows = profile_frame(frame, {"score": binnings()["score"]})
    ProfileStore(root / "profiles").write(SYSTEM, rows, watermark=end)
    return end, time.perf_counter() - started


def append_new(root: Path, count: int, label: str) -> None:
    """Append ``count`` new events through the log (batches of 1,000), then roll them."""
    rng = np.random.default_rng(zlib.crc32(label.encode()))
    now = dt.datetime.now(dt.UTC)
    with EventLog(root) as log:
        for start in range(0, count, 1_000):
            log.append(
                [
                    {
                        "kind": "prediction",
                        "system": SYSTEM,
                        "id": f"{label}-{i}",
                        "event_time": now - dt.timedelta(seconds=float(rng.uniform(0, 129_600))),
                        "entity_key": f"c{i}",
                        "model_version": 3,
                        "inputs": {
                            "tenure": int(rng.integers(0, 72)),
                            "monthly": round(float(rng.uniform(18, 120)), 1),
                            "plan": str(PLANS[rng.integers(0, 3)]),
                        },
                        "score": float(rng.uniform()),
                        "decision": "call",
                        "holdout": False,
                        "latency_ms": 2.0,
                    }
                    for i in range(start, min(start + 1_000, count))
                ]
            )


def wanted_ids(size: int, days: int, count: int, seed: int) -> list[str]:
    """Nine in ten: logged ids spread over the history; one in ten: ids never logged."""
    rng = np.random.default_rng(seed)
    known = count - count // 10
    day = rng.integers(0, days, known)
    number = rng.integers(0, max(size // days, 1), known)
    return [f"h{d}-{n}" for d, n in zip(day, number, strict=True)] + [
        f"missing-{seed}-{i}" for i in range(count // 10)
    ]


# --- one measurement, in a child process --------------------------------------------------------


def memory_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process from /proc, in MB.

    Not ``getrusage``: a child started by ``subprocess`` (vfork, then exec) inherits the parent's
    peak in ``ru_maxrss``, so the parent's history building would show up in the child's figure.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"/proc/self/status has no {field}; this benchmark needs Linux")


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux 4.0+), so the peak covers the measured call only."""
    with open("/proc/self/clear_refs", "w") as file:
        file.write("5")


def measure(what: str, root: Path, ids: list[str]) -> dict[str, Any]:
    """Run one read and report its time, the peak RSS, and what it read (in this process)."""
    from steward.data.profiles import ProfileStore, build_profiles

    log = EventLog(root)
    store = ProfileStore(root / "profiles")
    fitted = binnings()
    reset_peak()
    before = memory_mb("VmRSS")
    started = time.perf_counter()
    detail: Any
    if what == "sync":
        watermark = store.watermark(SYSTEM)
        files = len(log.files_received_after("prediction", SYSTEM, watermark))
        started = time.perf_counter()
        store.sync(log, SYSTEM, fitted, settle=dt.timedelta(0))
        detail = {"files_read": files}
    elif what == "sync-scan":  # what sync read before: the whole log, then a filter
        watermark = store.watermark(SYSTEM)
        events = log.scan("prediction", SYSTEM)
        rows, _ = build_profiles(events, fitted, watermark, until=dt.datetime.now(dt.UTC))
        detail = {"rows": len(rows)}
    elif what == "ids":
        detail = {"found": len(log.existing_ids("prediction", SYSTEM, ids))}
    elif what == "ids-scan":  # what existing_ids ran before: a deduplicated join over the log
        listing = ", ".join(f"'{identifier}'" for identifier in ids)
        found = log.query(
            "SELECT DISTINCT p.id FROM predictions AS p "
            f"JOIN (SELECT unnest([{listing}]) AS id) AS wanted USING (id)"
        )
        detail = {"found": found.num_rows}
    elif what == "ids-raw":  # the cheapest read of the files: the id column, no rules
        import duckdb

        pattern = str(root / "kind=prediction" / f"system={SYSTEM}" / "*" / "*.parquet")
        with duckdb.connect() as connection:
            found = connection.execute(
                "SELECT count(DISTINCT id) FROM read_parquet($p) WHERE list_contains($ids, id)",
                {"p": pattern, "ids": ids},
            ).fetchone()
        detail = {"found": found[0] if found else 0}
    else:
        raise SystemExit(f"unknown measurement {what!r}")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mb": memory_mb("VmHWM"), "before_mb": before, **detail}


def in_child(what: str, root: Path, ids: list[str]) -> dict[str, Any]:
    """``measure`` in a fresh interpreter; its figures come back as JSON on stdout."""
    command = [sys.executable, __file__, "--child", what, "--directory", str(root)]
    child = subprocess.run(
        command, input=json.dumps(ids), capture_output=True, text=True, check=False
    )
    if child.returncode != 0:
        raise SystemExit(f"measurement {what} failed:\n{child.stderr}")
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


# --- the run ----------------------------------------------------------------------------------


def run_size(directory: Path, size: int, arguments: argparse.Namespace) -> dict[str, Any]:
    root = directory / f"history-{size}"
    shutil.rmtree(root, ignore_errors=True)
    _, build_seconds = build_history(root, size, arguments.days)
    kinds = ["sync", "ids"] + (["sync-scan", "ids-scan", "ids-raw"] if arguments.compare else [])
    figures: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for repeat in range(arguments.repeats):
        append_new(root, arguments.new, f"new{repeat}")
        ids = wanted_ids(size, arguments.days, arguments.ids, seed=repeat)
        for kind in ["sync-scan", "sync", "ids", "ids-scan", "ids-raw"]:
            if kind in figures:
                figures[kind].append(in_child(kind, root, ids))
    summary: dict[str, Any] = {"size": size, "build_seconds": build_seconds}
    for kind, results in figures.items():
        summary[kind] = {
            "seconds": statistics.median(r["seconds"] for r in results),
            "peak_mb": max(r["peak_mb"] for r in results),
            "before_mb": max(r["before_mb"] for r in results),
            **{
                k: v for k, v in results[-1].items() if k not in ("seconds", "peak_mb", "before_mb")
            },
        }
    if not arguments.keep:
        shutil.rmtree(root, ignore_errors=True)
    return summary


def print_table(summaries: list[dict[str, Any]], kinds: list[str]) -> None:
    header = "| history | " + " | ".join(f"{k} time | {k} peak RSS" for k in kinds) + " |"
    print(header)
    print("|---:|" + "---:|---:|" * len(kinds))
    for summary in summaries:
        cells = [f"{summary['size']:,}"]
        for kind in kinds:
            cells += [
                f"{summary[kind]['seconds'] * 1000:.0f} ms",
                f"{summary[kind]['peak_mb']:.0f} MB",
            ]
        print("| " + " | ".join(cells) + " |")
    first, last = summaries[0], summaries[-1]
    cells = ["largest/smallest"]
    for kind in kinds:
        cells += [
            f"{last[kind]['seconds'] / first[kind]['seconds']:.2f}x",
            f"{last[kind]['peak_mb'] / first[kind]['peak_mb']:.2f}x",
        ]
    print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000,5000000")
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--new", type=int, default=10_000, help="new events per sync")
    parser.add_argument("--ids", type=int, default=100, help="ids per outcome check")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--directory", type=Path, default=None)
    parser.add_argument("--compare", action="store_true", help="also time the reads replaced")
    parser.add_argument("--keep", action="store_true", help="keep the histories on disk")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child is not None:
        ids = json.loads(sys.stdin.read())
        print(json.dumps(measure(arguments.child, arguments.directory, ids)))
        return
    sizes = [int(size) for size in arguments.sizes.split(",")]
    directory = arguments.directory or Path(tempfile.mkdtemp(prefix="steward-history-"))
    directory.mkdir(parents=True, exist_ok=True)
    print(
        f"python {platform.python_version()}, pyarrow {pa.__version__}, {os.cpu_count()} cores; "
        f"{arguments.days} days, {arguments.new:,} new events per sync, {arguments.ids} ids per "
        f"check, median of {arguments.repeats}; peak RSS is the child's whole process"
    )
    summaries = []
    for size in sizes:
        summary = run_size(directory, size, arguments)
        summaries.append(summary)
        print(
            f"{size:,} events: built in {summary['build_seconds']:.1f} s; "
            + json.dumps({k: v for k, v in summary.items() if isinstance(v, dict)}),
            flush=True,
        )
    kinds = ["sync", "ids"] + (["sync-scan", "ids-scan", "ids-raw"] if arguments.compare else [])
    print_table(summaries, kinds)


if __name__ == "__main__":
    main()
