"""The event log with its files on S3: what a roll, a first sync and an idle sync cost.

Starts a local S3-compatible server (moto's, in this process), then:

- rolls ``--rolls`` segments of ``--events`` predictions each, over 30 event dates, on one server
  (each roll uploads its files, then syncs), and the same rolls on local disk alone, for the ratio;
- syncs a second, empty folder from the store (every object downloaded);
- syncs it again with nothing new (one listing and the tombstones).

Prints figures and ratios; asserts nothing. moto answers from memory in this process, so network
latency to a real store comes on top (about 10-50 ms a request to S3 in the same region)::

    python benchmarks/bench_events_object_store.py
    python benchmarks/bench_events_object_store.py --rolls 20 --events 500
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

from steward.data.events import EventLog

BUCKET = "steward-bench"
START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _start_s3() -> object:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
    )
    import boto3

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    return server


def _rolls(log: EventLog, rolls: int, events: int) -> float:
    started = time.perf_counter()
    for k in range(rolls):
        log.append(
            [
                {
                    "kind": "prediction",
                    "system": "churn",
                    "id": f"p{k}-{i}",
                    "event_time": START + dt.timedelta(days=k % 30),
                    "score": 0.5,
                }
                for i in range(events)
            ]
        )
        log.flush()
        print(f"\r  roll {k + 1}/{rolls}", end="", flush=True)
    print()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rolls", type=int, default=100)
    parser.add_argument("--events", type=int, default=1000, help="events per roll")
    options = parser.parse_args()
    print(f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores")
    server = _start_s3()
    url = f"s3://{BUCKET}/events"
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        print(f"{options.rolls} rolls of {options.events} events, local disk alone:")
        with EventLog(root / "local") as local:
            alone = _rolls(local, options.rolls, options.events)
        print(f"{options.rolls} rolls of {options.events} events, each uploaded to {url}:")
        with EventLog(root / "one", remote=url) as one:
            uploaded = _rolls(one, options.rolls, options.events)
        other = EventLog(root / "other", remote=url)
        started = time.perf_counter()
        first = other.refresh()
        first_seconds = time.perf_counter() - started
        started = time.perf_counter()
        idle = other.refresh()
        idle_seconds = time.perf_counter() - started
        rows = other.count("prediction", "churn")
    server.stop()  # type: ignore[attr-defined]
    per_roll = uploaded / options.rolls * 1000
    print()
    print(f"roll on local disk alone:      {alone / options.rolls * 1000:8.0f} ms")
    print(
        f"roll uploaded, then synced:    {per_roll:8.0f} ms "
        f"({uploaded / alone:.1f}x local disk alone)"
    )
    print(f"first sync of an empty folder: {first_seconds:8.2f} s  ({first.downloaded} objects)")
    print(f"sync with nothing new:         {idle_seconds * 1000:8.0f} ms ({idle})")
    print(f"events read back by the second folder: {rows:,}")


if __name__ == "__main__":
    main()
