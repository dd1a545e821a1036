"""The event log with its Parquet files on object storage, on a local S3 server (moto's).

Each server keeps the write-ahead log and a copy of the files in a folder of its own; the store
is shared. ``tests/test_events.py`` runs every event-log and crash test on this setup too; these
tests cover what only it has: several folders on one store, a store that goes down and comes
back, a copy wiped by hand, ``file://`` URLs and the server's answers meanwhile.
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import duckdb
import httpx
import pytest

from steward import Steward
from steward.data.events import CRASH_AT_ENV, EventLog
from steward.errors import StoreError
from tests.conftest import S3_BUCKET, Server, free_port, require_module

DAY = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def predictions(ids: list[str], **fields: Any) -> list[dict[str, Any]]:
    return [
        {"kind": "prediction", "system": "churn", "id": i, "event_time": DAY, "score": 0.5}
        | {"entity_key": f"c{n % 4}"}
        | fields
        for n, i in enumerate(ids)
    ]


def store_keys(url: str) -> list[str]:
    """Every object under an s3:// URL, relative to it."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")
    return sorted(item["Key"].removeprefix(f"{prefix}/") for item in listed.get("Contents", []))


def raw_ids(folder: Path) -> list[str]:
    """Every row of every Parquet file of a folder, without the reader's deduplication."""
    files = sorted(str(path) for path in folder.glob("kind=*/system=*/date=*/*.parquet"))
    if not files:
        return []
    with duckdb.connect() as connection:
        rows = connection.execute("SELECT id FROM read_parquet($files)", {"files": files})
        return sorted(row[0] for row in rows.fetchall())


def test_rolled_files_land_in_the_store_and_another_folder_reads_them(
    tmp_path: Path, s3_url: str
) -> None:
    with EventLog(tmp_path / "a", remote=s3_url) as first:
        first.append(predictions([f"p{i}" for i in range(50)]))
    keys = store_keys(s3_url)
    assert [key for key in keys if key.endswith(".parquet")], keys
    assert all(key.startswith("kind=prediction/system=churn/date=2026-11-22/") for key in keys)
    assert not [key for key in keys if "/." in key], "a temporary file reached the store"
    other = EventLog(tmp_path / "b", remote=s3_url, sync_seconds=0)
    assert other.count("prediction", "churn") == 50
    assert other.existing_ids("prediction", "churn", ["p3", "nope"]) == {"p3"}
    assert raw_ids(tmp_path / "b") == raw_ids(tmp_path / "a")


def test_erasure_compaction_and_retention_reach_every_folder(tmp_path: Path, s3_url: str) -> None:
    one = EventLog(tmp_path / "one", remote=s3_url, sync_seconds=0)
    two = EventLog(tmp_path / "two", remote=s3_url, sync_seconds=0)
    for batch in range(3):  # three rolls: three files in one partition
        one.append(predictions([f"p{batch}-{i}" for i in range(20)]))
        one.flush()
    two.append(predictions(["old"], event_time=DAY - dt.timedelta(days=400)))
    two.flush()
    assert two.count("prediction", "churn") == 61

    assert two.erase("churn", "c1") == 15  # on the other server's files, through the store
    assert one.count("prediction", "churn") == 46
    assert "_erasures.json" in store_keys(s3_url)
    # rows of the erased entity still in a write-ahead segment of the first server, received
    # before the erasure, never reach the store either: the tombstone came with the files
    assert one.compact("prediction", "churn", DAY.date()) == 3
    assert two.count("prediction", "churn") == 46
    assert raw_ids(tmp_path / "two") == raw_ids(tmp_path / "one")
    assert len([k for k in store_keys(s3_url) if k.endswith(".parquet")]) == 2

    assert one.delete_before(DAY - dt.timedelta(days=30)) == 1
    assert "old" not in two.scan("prediction", "churn")["id"].to_pylist()
    assert not [key for key in store_keys(s3_url) if "date=2025" in key]
    one.close()
    two.close()


def test_a_copy_wiped_by_hand_is_downloaded_again_and_nothing_leaves_the_store(
    tmp_path: Path, s3_url: str
) -> None:
    with EventLog(tmp_path / "events", remote=s3_url) as log:
        log.append(predictions([f"p{i}" for i in range(30)]))
    before = store_keys(s3_url)
    for path in (tmp_path / "events").glob("kind=*"):
        subprocess.run(["rm", "-rf", str(path)], check=True)
    again = EventLog(tmp_path / "events", remote=s3_url, sync_seconds=0)
    assert again.count("prediction", "churn") == 30
    assert store_keys(s3_url) == before


def test_a_file_url_store_publishes_whole_files_and_serves_another_folder(tmp_path: Path) -> None:
    store = tmp_path / "store"
    url = f"file://{store}"
    with EventLog(tmp_path / "a", remote=url) as log:
        log.append(predictions([f"p{i}" for i in range(10)]))
    published = sorted(p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file())
    assert any(name.endswith(".parquet") for name in published)
    assert not [name for name in published if "/." in name], "a temporary file was left"
    assert EventLog(tmp_path / "b", remote=url, sync_seconds=0).count("prediction", "churn") == 10


def test_an_unknown_scheme_is_a_store_error_naming_the_url(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="'nope://bucket/events' cannot be opened"):
        EventLog(tmp_path / "events", remote="nope://bucket/events")


CRASHING_WRITER = """
import sys
from steward.data.events import EventLog
log = EventLog(sys.argv[1], remote=sys.argv[2])
log.append([{"kind": "prediction", "system": "churn", "id": f"p{i}"} for i in range(40)])
log.flush()
"""


def test_a_roll_killed_between_uploads_is_finished_by_the_next_writer_exactly_once(
    tmp_path: Path, s3_url: str
) -> None:
    import os

    root = tmp_path / "events"
    environment = {**os.environ, CRASH_AT_ENV: "mirror.uploaded@1"}  # the index is up, not the file
    child = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, str(root), s3_url], env=environment, check=False
    )
    assert child.returncode == -9, "the crash point was never reached"
    assert not [key for key in store_keys(s3_url) if key.endswith(".parquet")]
    with EventLog(root, remote=s3_url) as log:
        log.flush()  # adopts the dead writer's segment: rolls and uploads it again
    elsewhere = tmp_path / "elsewhere"
    assert EventLog(elsewhere, remote=s3_url).count("prediction", "churn") == 40
    assert raw_ids(elsewhere) == sorted(f"p{i}" for i in range(40))


# -- a store that goes down and comes back


class StoppableS3:
    """A moto S3 server of the test's own, on a fixed port, stopped and started at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server: Any = None

    def start(self) -> None:
        moto_server = require_module("moto.server")
        self.server = moto_server.ThreadedMotoServer(
            ip_address="127.0.0.1", port=self.port, verbose=False
        )
        self.server.start()

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def stoppable_s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[StoppableS3]:
    """A second endpoint on the same in-process S3 state (the bucket exists), reached through
    AWS_ENDPOINT_URL like the first."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = StoppableS3()
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    yield server
    if server.server is not None:
        server.stop()


def test_a_store_down_keeps_appends_on_disk_up_to_the_bound_then_heals(
    tmp_path: Path, stoppable_s3: StoppableS3
) -> None:
    url = f"s3://{S3_BUCKET}/down-{tmp_path.name}"
    log = EventLog(tmp_path / "events", remote=url, sync_seconds=0, backlog_bytes=20_000)
    log.append(predictions(["before"]))
    log.flush()
    stoppable_s3.stop()
    acknowledged = ["before"]
    log.append(predictions(["during-0"]))  # the store is not asked: the append is local
    acknowledged.append("during-0")
    with pytest.raises(StoreError, match=f"could not .* the object store {url}"):
        log.flush()
    assert log.health() is None  # one event waits: under the bound
    assert log.object_store()["failure"] is not None  # type: ignore[index]
    refused = None
    for n in range(1, 500):
        try:
            log.append(predictions([f"during-{n}"], inputs={"note": "x" * 200}))
            acknowledged.append(f"during-{n}")
        except StoreError as error:
            refused = error
            break
    assert refused is not None and "events_backlog_mb" in str(refused)
    assert log.health() is not None

    stoppable_s3.start()
    log.flush()  # rolls what waited, uploads it, and the failure is gone
    assert log.health() is None and log.object_store()["failure"] is None  # type: ignore[index]
    log.append(predictions(["after"]))
    acknowledged.append("after")
    log.close()
    stored = EventLog(tmp_path / "elsewhere", remote=url).scan("prediction", "churn")
    ids = stored["id"].to_pylist()
    assert sorted(ids) == sorted(acknowledged)


def test_a_server_whose_store_stops_answers_503_and_not_ready_then_heals_without_a_restart(
    workspace: Steward, stoppable_s3: StoppableS3
) -> None:
    url = f"s3://{S3_BUCKET}/server-{workspace.settings.workspace.name}"
    environment = {
        "STEWARD_EVENTS_URL": url,
        "STEWARD_EVENTS_SYNC_SECONDS": "0.5",
        "STEWARD_EVENTS_BACKLOG_MB": "1",
    }
    server = Server(
        workspace.settings.workspace, workspace.settings.database_url, environment=environment
    )
    server.start()
    log_url = f"{server.url}/v1/systems/churn/predictions:log"
    acknowledged: list[str] = []

    def send(start: int) -> httpx.Response:
        body = {
            "predictions": [
                {"id": f"p{i}", "score": 0.5, "inputs": {"note": "x" * 400, "n": i}}
                for i in range(start, start + 200)
            ]
        }
        answer = httpx.post(log_url, json=body, timeout=30)
        if answer.status_code == 200:
            acknowledged.extend(f"p{i}" for i in range(start, start + 200))
        return answer

    try:
        assert send(0).status_code == 200
        stoppable_s3.stop()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # readiness tries the store every 0.5 s
            ready = httpx.get(f"{server.url}/readyz", timeout=30)
            if ready.json().get("status") == "degraded":
                break
            time.sleep(0.2)
        assert ready.status_code == 200 and ready.json()["object_store"]["failure"], ready.text
        refused = None
        for start in range(200, 40_000, 200):
            answer = send(start)
            if answer.status_code != 200:
                refused = answer
                break
        assert refused is not None, "the 1 MB bound was never reached"
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1", refused.text
        assert url in refused.json()["detail"]
        ready = httpx.get(f"{server.url}/readyz", timeout=30)
        assert ready.status_code == 503 and ready.json()["cause"] == "event log", ready.text

        stoppable_s3.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = httpx.get(f"{server.url}/readyz", timeout=30)
            if ready.status_code == 200 and ready.json()["status"] == "ok":
                break
            time.sleep(0.2)
        assert ready.json()["status"] == "ok", ready.text
        assert send(100_000).status_code == 200
    finally:
        server.stop()
        server.close()
    stored = EventLog(workspace.settings.workspace / "elsewhere", remote=url)
    ids = stored.scan("prediction", "churn")["id"].to_pylist()
    assert set(acknowledged) <= set(ids)
    assert len(ids) == len(set(ids)), "an event appears twice"
