"""Event log: Steward's segments + Parquet + atomic rename, against Delta Lake (``deltalake``).

Measures, on the same events in the same run:

- append throughput of small batches (``--batches`` appends of ``--batch-size`` events, one thread);
- scan time with DuckDB (whole system to Arrow, and an aggregate);
- retention (drop the oldest day) and erasure (remove one entity, physically);
- compaction of a partition's small files;
- group commit: N threads each appending batches, durable events/second.

Prints figures and ratios; asserts nothing. Needs ``deltalake`` for the comparison (skipped, with a
note, if it is missing)::

    python benchmarks/bench_event_log.py
    python benchmarks/bench_event_log.py --batches 20 --threads 1,4 --quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from steward.data.events import PREDICTION_SCHEMA, EventLog

DAYS = 10
START = dt.datetime(2026, 11, 13, tzinfo=dt.UTC)


def make_events(batch: int, size: int, writer: str = "b") -> list[dict[str, Any]]:
    """One batch of predictions spread over ``DAYS`` days and 10,000 entities."""
    return [
        {
            "kind": "prediction",
            "system": "churn",
            "id": f"{writer}-{batch}-{i}",
            "event_time": START + dt.timedelta(days=(batch * size + i) % DAYS, seconds=i),
            "entity_key": f"c{(batch * size + i) % 10_000}",
            "model_version": 3,
            "inputs": '{"tenure":4,"plan":"basic","monthly":70.5}',
            "score": (i % 100) / 100,
            "decision": "call" if i % 3 else "none",
            "holdout": i % 10 == 0,
            "latency_ms": 1.5,
        }
        for i in range(size)
    ]


def to_arrow(events: list[dict[str, Any]]) -> pa.Table:
    """The same columnar conversion the event log does, plus the ``date`` Delta partitions by."""
    now = dt.datetime.now(dt.UTC)
    columns: dict[str, list[Any]] = {}
    for field in PREDICTION_SCHEMA:
        columns[field.name] = [event.get(field.name) for event in events]
    columns["received_at"] = [now] * len(events)
    columns["writer"] = ["delta"] * len(events)
    columns["sequence"] = list(range(len(events)))
    table = pa.Table.from_pydict(columns, schema=PREDICTION_SCHEMA)
    days = [time.strftime("%Y-%m-%d", time.gmtime(e["event_time"].timestamp())) for e in events]
    return table.append_column("date", pa.array(days))


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def best_of(repeats: int, action: Callable[[], Any]) -> float:
    return min(timed(action)[0] for _ in range(repeats))


def fsync_latency(directory: Path) -> float:
    path = directory / "fsync-probe"
    with open(path, "wb") as file:
        samples = []
        for _ in range(50):
            file.write(b"x" * 4096)
            file.flush()
            samples.append(timed(lambda: os.fdatasync(file.fileno()))[0])
    path.unlink()
    return statistics.median(samples)


def row(label: str, steward: float, delta: float | None, unit: str = "s") -> None:
    delta_text = "n/a" if delta is None else f"{delta:10.3f}"
    ratio = "" if delta is None or steward == 0 else f"{delta / steward:8.2f}x"
    print(f"  {label:<46} {steward:10.3f} {delta_text:>10} {unit:<4} {ratio}")


# -- steward


def steward_appends(
    root: Path, batches: list[list[dict[str, Any]]], roll_every: int
) -> tuple[float, float]:
    """Seconds to acknowledge every append, and the same plus rolling into Parquet.

    A roll every ``roll_every`` appends stands in for the size or age threshold a server hits,
    so the partitions end with several small files, as they would after a day of traffic.
    """
    log = EventLog(root)
    acknowledged = rolled = 0.0
    for index, batch in enumerate(batches, start=1):
        acknowledged += timed(lambda b=batch: log.append(b))[0]
        if index % roll_every == 0:
            rolled += timed(log.flush)[0]
    rolled += timed(log.close)[0]
    return acknowledged, acknowledged + rolled


def steward_scan(root: Path) -> tuple[float, float, float]:
    log = EventLog(root)
    full = best_of(3, lambda: log.scan("prediction", "churn"))
    aggregate = best_of(
        3, lambda: log.query("SELECT decision, avg(score) FROM predictions GROUP BY ALL")
    )
    files = [str(p) for p in root.rglob("*.parquet")]
    raw = best_of(3, lambda: duckdb_scan(files))
    return full, aggregate, raw


def duckdb_scan(files: list[str]) -> pa.Table:
    with duckdb.connect() as connection:
        relation = connection.sql(
            f"SELECT * FROM read_parquet({files!r}, hive_partitioning = true, union_by_name = true)"
        )
        return relation.to_arrow_table()


def steward_maintenance(root: Path) -> dict[str, float]:
    log = EventLog(root)
    figures = {}
    figures["compact"] = sum(
        timed(lambda d=day: log.compact("prediction", "churn", d))[0]
        for day in (START.date() + dt.timedelta(days=n) for n in range(DAYS))
    )
    figures["retention"], _ = timed(lambda: log.delete_before(START + dt.timedelta(days=1)))
    figures["erasure"], _ = timed(lambda: log.erase("churn", "c17"))
    return figures


# -- delta


def delta_appends(uri: str, batches: list[list[dict[str, Any]]]) -> float:
    from deltalake import write_deltalake

    def append_all() -> None:
        for batch in batches:
            write_deltalake(uri, to_arrow(batch), mode="append", partition_by=["system", "date"])

    return timed(append_all)[0]


def delta_scan(uri: str) -> tuple[float, float]:
    from deltalake import DeltaTable

    def full() -> pa.Table:
        return duckdb_scan(DeltaTable(uri).file_uris())

    def aggregate() -> pa.Table:
        files = DeltaTable(uri).file_uris()
        with duckdb.connect() as connection:
            return connection.sql(
                f"SELECT decision, avg(score) FROM read_parquet({files!r}) GROUP BY ALL"
            ).to_arrow_table()

    return best_of(3, full), best_of(3, aggregate)


def delta_maintenance(uri: str) -> dict[str, float]:
    from deltalake import DeltaTable

    def vacuum(table: DeltaTable) -> None:
        # Deleted rows stay in old files until vacuum; erasure and retention need them gone.
        table.vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False)

    def compact() -> None:
        table = DeltaTable(uri)
        table.optimize.compact()
        vacuum(table)

    def retention() -> None:
        table = DeltaTable(uri)
        table.delete(f"date < '{(START + dt.timedelta(days=1)).date().isoformat()}'")
        vacuum(table)

    def erasure() -> None:
        table = DeltaTable(uri)
        table.delete("entity_key = 'c17'")
        vacuum(table)

    return {
        name: timed(action)[0]
        for name, action in [("compact", compact), ("retention", retention), ("erasure", erasure)]
    }


# -- group commit


def bulk_appends(root: Path, size: int, repeats: int = 5) -> None:
    """``append`` (a dict per event) against ``append_table`` (Arrow columns), same events.

    Each call is one fsynced append of ``size`` events; the figure is durable events/second,
    the median of ``repeats`` calls each, the two paths alternating so both see the same load.
    """
    with EventLog(root) as log:
        rates: dict[str, list[float]] = {"append": [], "append_table": []}
        for index in range(repeats):
            events = make_events(index, size, writer="dicts")
            columns = make_events(index, size, writer="table")
            table = pa.Table.from_pylist(columns).drop_columns(["kind"])
            rates["append"].append(size / timed(lambda e=events: log.append(e))[0])
            seconds = timed(lambda t=table: log.append_table("prediction", t))[0]
            rates["append_table"].append(size / seconds)
    dicts, bulk = (statistics.median(rates[name]) for name in ("append", "append_table"))
    print(f"\nbulk: one fsynced append of {size:,} events, durable events/second (median)")
    print(f"  append (a dict per event)      {dicts:12,.0f}")
    print(f"  append_table (Arrow columns)   {bulk:12,.0f}   {bulk / dicts:.1f}x")


def group_commit(directory: Path, threads: int, batch_size: int, seconds: float) -> float:
    """Durable events/second with ``threads`` threads appending ``batch_size`` events each call."""
    root = directory / f"group-{threads}-{batch_size}"
    log = EventLog(root)
    payloads = [make_events(n, batch_size, f"t{n}") for n in range(threads)]
    counts = [0] * threads
    deadline = time.perf_counter() + seconds

    def worker(index: int) -> None:
        events, sent = payloads[index], 0
        while time.perf_counter() < deadline:
            # Fresh ids per call, so the log holds distinct events (ids do not affect speed).
            log.append([{**event, "id": f"{event['id']}-{sent}"} for event in events])
            sent += 1
        counts[index] = sent * batch_size

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - started
    log.close()
    shutil.rmtree(root)
    return sum(counts) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--roll-every", type=int, default=10, help="appends between rolls")
    parser.add_argument("--threads", default="1,4,16")
    parser.add_argument("--group-batch-sizes", default="1,10,100")
    parser.add_argument("--seconds", type=float, default=3.0, help="per group-commit run")
    parser.add_argument("--quick", action="store_true", help="1 s group-commit runs")
    parser.add_argument("--bulk-size", type=int, default=10_000, help="events per bulk append")
    parser.add_argument("--directory", default=None, help="where to write (default: a temp dir)")
    arguments = parser.parse_args()
    seconds = 1.0 if arguments.quick else arguments.seconds
    directory = Path(tempfile.mkdtemp(prefix="bench-events-", dir=arguments.directory))
    try:
        report(arguments, directory, seconds)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def report(arguments: argparse.Namespace, directory: Path, seconds: float) -> None:
    try:
        import deltalake

        delta_version: str | None = deltalake.__version__
    except ImportError:
        delta_version = None
    print(
        f"python {platform.python_version()}, pyarrow {pa.__version__}, duckdb {duckdb.__version__}"
        f", deltalake {delta_version or 'not installed'}; {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f}; median fdatasync {fsync_latency(directory) * 1e3:.2f} ms"
    )
    batches = [make_events(n, arguments.batch_size) for n in range(arguments.batches)]
    total = arguments.batches * arguments.batch_size
    print(f"\n{arguments.batches} appends of {arguments.batch_size} events ({total:,} events)")
    print(f"  {'':<46} {'steward':>10} {'delta':>10} {'':<4} delta/steward")
    acknowledged, rolled = steward_appends(directory / "steward", batches, arguments.roll_every)
    delta_uri = str(directory / "delta")
    delta_seconds = delta_appends(delta_uri, batches) if delta_version else None
    row("appends, acknowledged (fsynced)", acknowledged, delta_seconds)
    row(f"appends + roll into Parquet every {arguments.roll_every}", rolled, delta_seconds)
    row(
        "events/second acknowledged",
        total / acknowledged,
        None if delta_seconds is None else total / delta_seconds,
        "ev/s",
    )
    files = len(list((directory / "steward").rglob("*.parquet")))
    delta_files = len(list(Path(delta_uri).rglob("*.parquet"))) if delta_version else None
    row("Parquet files after the appends", files, delta_files, "")
    full, aggregate, raw = steward_scan(directory / "steward")
    delta_full, delta_aggregate = delta_scan(delta_uri) if delta_version else (None, None)
    row("scan whole system to Arrow (steward: deduped)", full, delta_full)
    row("scan with raw DuckDB read_parquet (no dedupe)", raw, delta_full)
    row("aggregate query (steward: deduped view)", aggregate, delta_aggregate)
    ours = steward_maintenance(directory / "steward")
    theirs = delta_maintenance(delta_uri) if delta_version else {}
    row(
        f"compact {DAYS} partitions (delta: optimize+vacuum)",
        ours["compact"],
        theirs.get("compact"),
    )
    full, _, raw = steward_scan(directory / "steward")
    delta_full = delta_scan(delta_uri)[0] if delta_version else None
    row("scan after compaction (steward: deduped)", full, delta_full)
    row("scan after compaction, raw read_parquet", raw, delta_full)
    row("retention: drop oldest day (delta: +vacuum)", ours["retention"], theirs.get("retention"))
    row("erasure: one entity (delta: +vacuum)", ours["erasure"], theirs.get("erasure"))
    bulk_appends(directory / "bulk", arguments.bulk_size)
    print(f"\ngroup commit: durable events/second, {seconds:.0f} s per run")
    sizes = [int(size) for size in arguments.group_batch_sizes.split(",")]
    print(f"  {'threads':>8} " + " ".join(f"{f'batch {size}':>12}" for size in sizes))
    for threads in (int(n) for n in arguments.threads.split(",")):
        rates = [group_commit(directory, threads, size, seconds) for size in sizes]
        print(f"  {threads:>8} " + " ".join(f"{rate:12,.0f}" for rate in rates))


if __name__ == "__main__":
    main()
