"""The event log on real files: durability under SIGKILL, rolls, reads, dedupe, retention."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.dataset as ds
import pytest

import steward.data.events as events_module
from steward.data.events import (
    CRASH_AT_ENV,
    OUTCOME_SCHEMA,
    PREDICTION_SCHEMA,
    EventLog,
    schema_for,
)
from steward.data.events.tombstones import record_erasure
from steward.errors import ConflictError, InvalidInputError, StoreError

DAY = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
BATCH_SIZE = 20

# Child processes import the real steward.events without running steward/__init__.py, which
# imports the whole platform (SQLAlchemy, pandas, ...) that the children do not use.
PRELUDE = f"""
import sys, types
package = types.ModuleType("steward")
package.__path__ = [{str(Path(events_module.__file__).parents[2])!r}]
sys.modules["steward"] = package
from steward.data.events import EventLog
import functools, os
if os.environ.get("STEWARD_TEST_EVENTS_REMOTE"):  # the same tests, with the files on S3
    EventLog = functools.partial(
        EventLog, remote=os.environ["STEWARD_TEST_EVENTS_REMOTE"], sync_seconds=0
    )
"""

# A writer process: appends numbered batches, printing each number only after append returns.
# Batch k holds events "k-0" .. "k-19" split over two systems and three days, so each segment
# spans several partitions and a roll writes several files.
WORKER = (
    PRELUDE
    + """
import datetime as dt

root, writer, batches, segment_bytes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
day = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
log = EventLog(root, writer_id=writer, segment_bytes=segment_bytes)
for k in range(batches):
    log.append([
        {"kind": "prediction", "system": "churn" if i % 2 else "fraud", "id": f"{writer}-{k}-{i}",
         "event_time": day + dt.timedelta(days=(k + i) % 3), "entity_key": f"c{i}", "score": 0.5}
        for i in range(20)
    ])
    print(k, flush=True)
log.close()
print("closed", flush=True)
"""
)


#: The object store the test's event logs keep their files in (None: local disk alone). Every
#: test of this module runs twice: on local disk, and with the files on the local S3 server.
REMOTE: str | None = None
REMOTE_ENV = "STEWARD_TEST_EVENTS_REMOTE"


@pytest.fixture(autouse=True, params=["local", "s3"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    global REMOTE
    REMOTE = request.getfixturevalue("s3_url") if request.param == "s3" else None
    monkeypatch.setenv(REMOTE_ENV, REMOTE or "")
    yield request.param
    REMOTE = None


def open_log(root: Path, **options: Any) -> EventLog:
    """An event log on ``root``, its files also on the test's object store when it has one
    (read with no delay: each read lists the store)."""
    if REMOTE is None:
        return EventLog(root, **options)
    return EventLog(root, remote=REMOTE, sync_seconds=0, **options)


def object_store_environment() -> dict[str, str]:
    """What a child process needs to reach the test's object store (none on local disk)."""
    reach = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}
    return {**reach, REMOTE_ENV: REMOTE or ""}


@pytest.fixture(scope="session")
def child_environment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment for child processes, with a bytecode cache they share.

    Where PYTHONDONTWRITEBYTECODE is set, every child would compile pyarrow's lazy pandas import
    from source again (seconds each); a cache of their own keeps the venv untouched.
    """
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in (CRASH_AT_ENV, "PYTHONDONTWRITEBYTECODE")
    }
    environment["PYTHONPYCACHEPREFIX"] = str(tmp_path_factory.mktemp("pycache"))
    # Fill the cache once, so children started together do not each compile the same modules.
    warm_up = PRELUDE + "import pyarrow; pyarrow.array([{'a': 1}])"
    subprocess.run([sys.executable, "-c", warm_up], env=environment, check=True)
    return environment


def run_child(code: str, environment: dict[str, str], crash_at: str) -> int:
    child = subprocess.run(
        [sys.executable, "-c", PRELUDE + code],
        env={**environment, **object_store_environment(), CRASH_AT_ENV: crash_at},
        check=False,
    )
    return child.returncode


def start_worker(
    environment: dict[str, str],
    tmp_path: Path,
    root: Path,
    *,
    writer: str = "w1",
    batches: int = 1_000_000,
    segment_bytes: int = 32_768,
    crash_at: str | None = None,
) -> subprocess.Popen[str]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    environment = {**environment, **object_store_environment()}
    if crash_at is not None:
        environment = {**environment, CRASH_AT_ENV: crash_at}
    return subprocess.Popen(
        [sys.executable, str(script), str(root), writer, str(batches), str(segment_bytes)],
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )


def acknowledged(output: str) -> set[int]:
    return {int(line) for line in output.splitlines() if line.isdigit()}


def ids_by_batch(log: EventLog, writer: str = "w1") -> Counter[int]:
    """How many events of each batch a reader sees (over both systems)."""
    seen: Counter[int] = Counter()
    for system in ("churn", "fraud"):
        for identifier in log.scan("prediction", system)["id"].to_pylist():
            owner, batch, _ = identifier.rsplit("-", 2)
            if owner == writer:
                seen[int(batch)] += 1
    return seen


def raw_parquet_ids(root: Path) -> list[str]:
    """Every row of every Parquet file, without the reader's deduplication."""
    files = sorted(str(path) for path in root.glob("kind=*/system=*/date=*/*.parquet"))
    if not files:
        return []
    with duckdb.connect() as connection:
        rows = connection.execute("SELECT id FROM read_parquet($files)", {"files": files})
        return [row[0] for row in rows.fetchall()]


def assert_exactly_once_after_recovery(root: Path, acked: set[int]) -> None:
    """Readers see acknowledged batches whole, any other batch whole or not at all; after the
    dead writer's segments are adopted, the files themselves hold every row exactly once."""
    reader = open_log(root)
    seen = ids_by_batch(reader)
    assert acked <= set(seen), f"acknowledged batches lost: {sorted(acked - set(seen))}"
    assert all(count == BATCH_SIZE for count in seen.values()), f"partial batches: {seen}"
    reader.flush()  # adopts the dead writer's segments
    reader.flush()  # and doing it again changes nothing
    assert not list(root.glob("_wal/*/*.wal"))
    raw = raw_parquet_ids(root)
    assert len(raw) == len(set(raw)) == BATCH_SIZE * len(seen)
    assert ids_by_batch(reader) == seen
    if REMOTE is not None:  # another server, with a folder of its own, finds the same in the store
        elsewhere = open_log(root.parent / "another-server")
        assert ids_by_batch(elsewhere) == seen
        assert sorted(raw_parquet_ids(root.parent / "another-server")) == sorted(raw)


def prediction(identifier: str, **fields: Any) -> dict[str, Any]:
    return {"kind": "prediction", "system": "churn", "id": identifier, "event_time": DAY, **fields}


def outcome(identifier: str, **fields: Any) -> dict[str, Any]:
    return {"kind": "outcome", "system": "churn", "id": identifier, "event_time": DAY, **fields}


@pytest.fixture
def log(tmp_path: Path) -> Any:
    with open_log(tmp_path / "events", segment_bytes=16_384) as event_log:
        yield event_log


# -- the envelope and the schema


def test_every_exported_name_exists() -> None:
    assert all(hasattr(events_module, name) for name in events_module.__all__)


def test_appended_fields_come_back_typed_with_server_stamps(log: EventLog) -> None:
    before = dt.datetime.now(dt.UTC)
    plus_five = dt.timezone(dt.timedelta(hours=5))
    log.append(
        [
            prediction(
                "p1",
                event_time=dt.datetime(2026, 11, 22, 3, 0, tzinfo=plus_five),
                entity_key="c1",
                model_version=3,
                inputs={"tenure": 4, "plan": "basic"},
                score=0.81,
                decision="call",
                holdout=False,
                intended_action="call",
                latency_ms=2.5,
                violations=[],
            )
        ]
    )
    table = log.scan("prediction", "churn")
    assert table.schema == PREDICTION_SCHEMA
    row = table.to_pylist()[0]
    assert row["event_time"] == dt.datetime(2026, 11, 21, 22, 0, tzinfo=dt.UTC)
    assert row["inputs"] == '{"tenure":4,"plan":"basic"}'
    assert row["violations"] == "[]"
    assert (row["model_version"], row["score"], row["holdout"]) == (3, 0.81, False)
    assert row["received_at"] >= before.replace(microsecond=0)
    assert row["writer"] == log.writer_id


def test_event_time_defaults_to_receive_time(log: EventLog) -> None:
    log.append([{"kind": "outcome", "system": "churn", "id": "o1", "value": 1.0}])
    row = log.scan("outcome", "churn").to_pylist()[0]
    assert row["event_time"] == row["received_at"]
    assert schema_for("outcome") == OUTCOME_SCHEMA


def test_a_call_with_one_bad_event_stores_none_of_them(log: EventLog) -> None:
    with pytest.raises(InvalidInputError, match=r"field 'score' expects double, got 'high'"):
        log.append([prediction("p1", score=0.2), prediction("p2", score="high")])
    assert log.count("prediction", "churn") == 0


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"kind": "click", "system": "churn", "id": "x"}, "kind 'click' is not one of"),
        (prediction("p1", colour="red"), r"unknown fields \['colour'\]"),
        (prediction("", score=0.1), "'id' must be a non-empty string"),
        (prediction("p1", system="churn/../x"), "is not a valid name"),
        (prediction("p1", event_time=dt.datetime(2026, 1, 1)), "timezone-aware"),
        (prediction("p1", received_at=DAY), r"sets \['received_at'\], which the log stamps"),
    ],
)
def test_malformed_events_are_rejected_with_the_value(
    log: EventLog, event: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        log.append([event])


# -- reading across rolls, layout, other engines


def test_scan_sees_every_event_across_roll_boundaries(log: EventLog) -> None:
    for batch in range(30):
        log.append([prediction(f"{batch}-{i}", score=i / 10) for i in range(10)])
        if batch in (9, 19):
            log.flush()  # half in Parquet, half still in write-ahead segments
    identifiers = log.scan("prediction", "churn")["id"].to_pylist()
    assert sorted(identifiers) == sorted(f"{b}-{i}" for b in range(30) for i in range(10))
    assert log.count("prediction", "churn") == 300


def test_files_are_hive_partitioned_and_readable_by_any_parquet_engine(log: EventLog) -> None:
    log.append([prediction("p1"), prediction("p2", event_time=DAY + dt.timedelta(days=1))])
    log.append([outcome("o1", prediction_id="p1", value=1.0)])
    log.flush()
    names = sorted(str(p.relative_to(log.root).parent) for p in log.root.rglob("*.parquet"))
    assert names == [
        "kind=outcome/system=churn/date=2026-11-22",
        "kind=prediction/system=churn/date=2026-11-22",
        "kind=prediction/system=churn/date=2026-11-23",
    ]
    dataset = ds.dataset(log.root / "kind=prediction", format="parquet", partitioning="hive")
    assert sorted(dataset.to_table()["id"].to_pylist()) == ["p1", "p2"]
    with duckdb.connect() as connection:
        rows = connection.sql(
            f"SELECT system, date, count(*) FROM read_parquet('{log.root}/kind=*/*/*/*.parquet', "
            "hive_partitioning = true) WHERE kind = 'prediction' GROUP BY ALL ORDER BY date"
        ).fetchall()
    assert rows == [("churn", dt.date(2026, 11, 22), 1), ("churn", dt.date(2026, 11, 23), 1)]


def test_scan_keeps_events_in_the_time_range(log: EventLog) -> None:
    log.append([prediction(f"p{day}", event_time=DAY + dt.timedelta(days=day)) for day in range(5)])
    log.flush()
    table = log.scan(
        "prediction", "churn", start=DAY + dt.timedelta(days=1), end=DAY + dt.timedelta(days=3)
    )
    assert table["id"].to_pylist() == ["p1", "p2"]


def test_query_runs_sql_over_the_views(log: EventLog) -> None:
    log.append([prediction("p1", decision="call"), prediction("p2", decision="call")])
    log.append([outcome("o1", prediction_id="p1", value=1.0)])
    table = log.query(
        "SELECT p.decision, count(*) AS n, sum(o.value) AS hits FROM predictions p "
        "LEFT JOIN outcomes o ON o.prediction_id = p.id GROUP BY ALL"
    )
    assert table.to_pylist() == [{"decision": "call", "n": 2, "hits": 1.0}]
    with pytest.raises(InvalidInputError, match="the views are predictions"):
        log.query("SELECT * FROM no_such_table")


# -- deduplication rules


def test_a_prediction_appended_twice_is_read_once_keeping_the_first(log: EventLog) -> None:
    log.append([prediction("p1", score=0.1)])
    log.flush()
    log.append([prediction("p1", score=0.9), prediction("p1", score=0.5)])
    assert log.scan("prediction", "churn")["score"].to_pylist() == [0.1]
    assert log.count("prediction", "churn") == 1


def test_outcomes_collapse_by_id_keeping_the_last_write(log: EventLog) -> None:
    log.append([outcome("o1", value=0.0)])
    log.flush()
    log.append([outcome("o1", value=1.0), outcome("o2", value=5.0)])
    log.append([outcome("o1", value=2.0)])
    values = {row["id"]: row["value"] for row in log.scan("outcome", "churn").to_pylist()}
    assert values == {"o1": 2.0, "o2": 5.0}


def test_shadow_scores_dedupe_by_prediction_id_and_model_version(log: EventLog) -> None:
    shadow = {"kind": "shadow", "system": "churn", "id": "p1", "event_time": DAY}
    log.append([{**shadow, "model_version": 4, "score": 0.3}, {**shadow, "model_version": 5}])
    log.append([{**shadow, "model_version": 4, "score": 0.9}])
    rows = log.scan("shadow", "churn").to_pylist()
    assert sorted((row["model_version"], row["score"]) for row in rows) == [(4, 0.3), (5, None)]


def test_the_same_id_in_two_systems_is_two_events(log: EventLog) -> None:
    log.append([prediction("p1"), {**prediction("p1"), "system": "fraud"}])
    assert log.count("prediction", "churn") == log.count("prediction", "fraud") == 1


# -- retention, erasure, compaction


def test_delete_before_drops_only_older_date_partitions(log: EventLog) -> None:
    log.append([prediction(f"p{day}", event_time=DAY + dt.timedelta(days=day)) for day in range(4)])
    log.append([outcome("o0", value=1.0)])
    log.flush()
    assert log.delete_before(DAY + dt.timedelta(days=2)) == 3
    assert log.scan("prediction", "churn")["id"].to_pylist() == ["p2", "p3"]
    assert log.count("outcome", "churn") == 0
    assert not list(log.root.rglob(".trash-*"))


def test_erase_removes_an_entity_from_files_and_segments(log: EventLog) -> None:
    log.append([prediction("p1", entity_key="c1"), prediction("p2", entity_key="c2")])
    log.append([outcome("o1", prediction_id="p1", entity_key="c1", value=1.0)])
    log.flush()
    log.append([prediction("p3", entity_key="c1")])  # still in a write-ahead segment
    assert log.erase("churn", "c1") == 2
    assert log.scan("prediction", "churn")["id"].to_pylist() == ["p2"]
    assert log.count("outcome", "churn") == 0
    log.flush()  # the roll drops the erased row too: no file ever holds it
    assert sorted(raw_parquet_ids(log.root)) == ["p2"]
    log.append([prediction("p4", entity_key="c1")])  # new data after the erasure is kept
    assert log.scan("prediction", "churn")["id"].to_pylist() == ["p2", "p4"]


def test_compact_merges_a_partition_into_one_file_with_the_same_rows(log: EventLog) -> None:
    for batch in range(4):
        log.append([prediction(f"{batch}-{i}") for i in range(5)])
        log.flush()
    before = log.scan("prediction", "churn")
    partition = log.root / "kind=prediction/system=churn/date=2026-11-22"
    assert len(list(partition.glob("*.parquet"))) == 4
    assert log.compact("prediction", "churn", DAY.date()) == 4
    assert len(list(partition.glob("*.parquet"))) == 1
    assert log.scan("prediction", "churn").equals(before)
    assert log.compact("prediction", "churn", "2026-11-22") == 0


# -- concurrency


def test_concurrent_threads_all_land_exactly_once(log: EventLog) -> None:
    errors: list[BaseException] = []

    def append_many(thread: int) -> None:
        try:
            for batch in range(25):
                log.append([prediction(f"{thread}-{batch}-{i}") for i in range(8)])
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=append_many, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for _ in range(3):
        log.flush()  # rolls race the appends
    for thread in threads:
        thread.join()
    assert not errors
    assert log.count("prediction", "churn") == 8 * 25 * 8
    log.flush()
    assert len(raw_parquet_ids(log.root)) == 8 * 25 * 8


def test_reads_racing_rolls_and_compaction_see_every_acknowledged_event_once(
    log: EventLog,
) -> None:
    acknowledged = 0
    done = threading.Event()
    errors: list[BaseException] = []

    def write_roll_and_compact() -> None:
        nonlocal acknowledged
        try:
            for batch in range(60):
                log.append([prediction(f"{batch}-{i}") for i in range(10)])
                acknowledged += 10
                if batch % 5 == 4:
                    log.flush()
                if batch % 15 == 14:
                    log.compact("prediction", "churn", DAY.date())
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            done.set()

    writer = threading.Thread(target=write_roll_and_compact)
    writer.start()
    reads = 0
    while not done.is_set() or reads == 0:
        before = acknowledged
        identifiers = log.scan("prediction", "churn")["id"].to_pylist()
        assert len(identifiers) == len(set(identifiers)) >= before
        reads += 1
    writer.join()
    assert not errors  # how many reads overlapped the writes varies with load; each was checked
    assert log.count("prediction", "churn") == 600


def test_two_writer_processes_share_one_root(
    tmp_path: Path, child_environment: dict[str, str]
) -> None:
    root = tmp_path / "events"
    workers = [
        start_worker(child_environment, tmp_path, root, writer=name, batches=20)
        for name in ("alpha", "beta")
    ]
    for worker in workers:
        output, _ = worker.communicate(timeout=60)
        assert worker.returncode == 0 and output.endswith("closed\n")
    log = open_log(root)
    for name in ("alpha", "beta"):
        assert ids_by_batch(log, name) == dict.fromkeys(range(20), BATCH_SIZE)
    writers = {path.name.split("-")[1] for path in root.rglob("part-*.parquet")}
    assert writers == {"alpha", "beta"}
    assert not list(root.glob("_wal/*"))  # a clean close leaves no write-ahead files


def test_a_writer_id_open_elsewhere_is_a_conflict(tmp_path: Path) -> None:
    with open_log(tmp_path / "events", writer_id="api-1") as first:
        first.append([prediction("p1")])
        second = open_log(tmp_path / "events", writer_id="api-1")
        with pytest.raises(ConflictError, match="'api-1' is already open"):
            second.append([prediction("p2")])
    assert open_log(tmp_path / "events").count("prediction", "churn") == 1


def test_appending_after_close_says_to_reopen(log: EventLog) -> None:
    log.close()
    with pytest.raises(StoreError, match="open a new EventLog"):
        log.append([prediction("p1")])


# -- crashes: a real writer process killed with SIGKILL


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_acknowledged_batches_survive_sigkill_at_a_random_moment(
    tmp_path: Path, child_environment: dict[str, str], seed: int
) -> None:
    root = tmp_path / "events"
    worker = start_worker(child_environment, tmp_path, root)
    assert worker.stdout is not None
    first_line = worker.stdout.readline()  # the worker is up and appending
    time.sleep(random.Random(seed).uniform(0.1, 0.6))
    worker.send_signal(signal.SIGKILL)
    output = first_line + worker.communicate(timeout=30)[0]
    assert worker.returncode == -signal.SIGKILL
    acked = acknowledged(output)
    assert acked  # the worker was killed mid-run, not before its first append
    assert_exactly_once_after_recovery(root, acked)


@pytest.mark.parametrize(
    "crash_at",
    [
        "wal.torn-write@7",
        "wal.before-fsync@7",
        "roll.temp-written@2",
        "roll.partition-renamed@2",
        "roll.before-segment-delete@2",
    ],
)
def test_a_crash_between_durable_steps_loses_and_duplicates_nothing(
    tmp_path: Path, child_environment: dict[str, str], crash_at: str
) -> None:
    root = tmp_path / "events"
    worker = start_worker(child_environment, tmp_path, root, crash_at=crash_at)
    output, _ = worker.communicate(timeout=60)
    assert worker.returncode == -signal.SIGKILL, "the crash point was never reached"
    acked = acknowledged(output)
    assert_exactly_once_after_recovery(root, acked)
    if crash_at.startswith("wal."):
        assert len(acked) == 6  # the seventh group commit never returned


def test_a_compaction_killed_before_removing_its_sources_is_finished_next_time(
    tmp_path: Path, child_environment: dict[str, str]
) -> None:
    root = tmp_path / "events"
    with open_log(root) as log:
        for batch in range(3):
            log.append([prediction(f"{batch}-{i}") for i in range(5)])
            log.flush()
    code = f"EventLog({str(root)!r}).compact('prediction', 'churn', '2026-11-22')"
    assert run_child(code, child_environment, "compact.before-source-delete") == -signal.SIGKILL
    partition = root / "kind=prediction/system=churn/date=2026-11-22"
    assert len(list(partition.glob("*.parquet"))) == 4  # three sources and the merged file
    log = open_log(root)
    assert log.count("prediction", "churn") == 15
    assert log.compact("prediction", "churn", DAY.date()) == 0  # drops the covered sources
    assert sorted(raw_parquet_ids(root)) == sorted(f"{b}-{i}" for b in range(3) for i in range(5))


def test_an_erasure_killed_after_its_tombstone_already_hides_the_rows(
    tmp_path: Path, child_environment: dict[str, str]
) -> None:
    root = tmp_path / "events"
    with open_log(root) as log:
        log.append([prediction("p1", entity_key="c1"), prediction("p2", entity_key="c2")])
    code = f"EventLog({str(root)!r}).erase('churn', 'c1')"
    assert run_child(code, child_environment, "erase.after-tombstone") == -signal.SIGKILL
    log = open_log(root)
    assert log.scan("prediction", "churn")["id"].to_pylist() == ["p2"]
    assert sorted(raw_parquet_ids(root)) == ["p1", "p2"]  # not yet rewritten
    assert log.erase("churn", "c1") == 1
    assert raw_parquet_ids(root) == ["p2"]


def test_an_unknown_crash_point_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CRASH_AT_ENV, "roll.sometimes")
    with pytest.raises(InvalidInputError, match="is not STEP or STEP@N"):
        open_log(tmp_path / "events")


def test_existing_ids_finds_logged_predictions_in_tail_and_parquet(tmp_path: Path) -> None:
    with open_log(tmp_path / "log") as log:
        log.append([{"kind": "prediction", "system": "churn", "id": f"p{i}"} for i in range(5)])
        log.flush()
        log.append([{"kind": "prediction", "system": "churn", "id": "p9"}])
        found = log.existing_ids("prediction", "churn", ["p0", "p4", "p9", "missing"])
        assert found == {"p0", "p4", "p9"}
        assert log.existing_ids("prediction", "other", ["p0"]) == set()
        assert log.existing_ids("prediction", "churn", []) == set()


NO_FSYNC_WRITER = (
    PRELUDE
    + """
log = EventLog(sys.argv[1], fsync=False)
for batch in range(100000):
    log.append([{"kind": "prediction", "system": "churn", "id": f"{batch}-{i}"} for i in range(5)])
    print(batch, flush=True)
"""
)


def test_without_fsync_acknowledged_events_still_survive_sigkill(tmp_path: Path) -> None:
    root = tmp_path / "events"
    child = subprocess.Popen(
        [sys.executable, "-c", NO_FSYNC_WRITER, str(root)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    acknowledged = [int(child.stdout.readline()) for _ in range(200)]
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    with open_log(root) as log:
        ids = set(log.scan("prediction", "churn")["id"].to_pylist())
    assert {f"{batch}-{i}" for batch in acknowledged for i in range(5)} <= ids


# -- reads by receive time, and by id, that do not read the history


def received_window(log: EventLog, kind: str, after: dt.datetime) -> list[dict[str, Any]]:
    """What a whole-log scan holds received after ``after``: the reference for scan_received."""
    rows = log.scan(kind, "churn").to_pylist()
    return [row for row in rows if row["received_at"] > after]


def test_a_read_by_receive_time_opens_only_the_files_received_after_the_watermark(
    log: EventLog,
) -> None:
    for day in range(10):  # a history of ten days, one roll each
        log.append(
            [prediction(f"h{day}-{i}", event_time=DAY + dt.timedelta(days=day)) for i in range(5)]
        )
        log.flush()
    history = set(log.root.rglob("*.parquet"))
    watermark = max(log.scan("prediction", "churn")["received_at"].to_pylist())
    time.sleep(0.002)
    late = DAY + dt.timedelta(days=2, hours=3)  # received now, happened in the history
    log.append(
        [
            prediction("n1", event_time=late),
            prediction("n2", event_time=DAY + dt.timedelta(days=11)),
        ]
    )
    log.flush()
    log.append([prediction("n3", event_time=DAY + dt.timedelta(days=11))])  # still a segment
    new_files = set(log.root.rglob("*.parquet")) - history
    assert len(new_files) == 2
    assert set(log.files_received_after("prediction", "churn", watermark)) == new_files
    assert len(log.files_received_after("prediction", "churn")) == len(history) + 2
    table = log.scan_received("prediction", "churn", after=watermark)
    assert table["id"].to_pylist() == ["n1", "n2", "n3"]
    assert table.schema == PREDICTION_SCHEMA
    until = table["received_at"][0].as_py()  # n1 and n2 came in one append
    assert log.scan_received("prediction", "churn", watermark, until)["id"].to_pylist() == [
        "n1",
        "n2",
    ]
    assert log.scan_received("prediction", "churn").num_rows == 53


def test_a_read_by_receive_time_applies_every_rule_of_a_whole_scan(log: EventLog) -> None:
    log.append([prediction(f"p{i}", entity_key=f"c{i}", score=0.1) for i in range(6)])
    log.append([outcome("o1", value=0.0), outcome("o2", value=0.0)])
    log.flush()
    watermark = max(log.scan("prediction", "churn")["received_at"].to_pylist())
    watermark = max(watermark, *log.scan("outcome", "churn")["received_at"].to_pylist())
    time.sleep(0.002)
    log.append([prediction("p1", score=0.9), prediction("p7", entity_key="c7")])  # p1: a retry
    log.append([outcome("o1", value=1.0), outcome("o3", value=3.0)])  # o1: a correction
    log.append([prediction("p8", entity_key="c2")])
    log.flush()
    # p2 retried, left in a segment; p9 erased
    log.append([prediction("p2", score=0.5), prediction("p9", entity_key="c9")])
    log.erase("churn", "c9")
    for kind in ("prediction", "outcome"):
        fresh = log.scan_received(kind, "churn", after=watermark).to_pylist()
        assert fresh == received_window(log, kind, watermark)
    fresh_ids = log.scan_received("prediction", "churn", after=watermark)["id"].to_pylist()
    assert fresh_ids == ["p7", "p8"]
    assert log.scan_received("outcome", "churn", after=watermark)["value"].to_pylist() == [1.0, 3.0]
    log.compact("prediction", "churn", DAY.date())  # one file reaching from before to after
    fresh = log.scan_received("prediction", "churn", after=watermark).to_pylist()
    assert fresh == received_window(log, "prediction", watermark)


def test_a_retried_shadow_score_keeps_its_first_copy_in_a_read_by_receive_time(
    log: EventLog,
) -> None:
    shadow = {"kind": "shadow", "system": "churn", "id": "p1", "event_time": DAY}
    log.append([{**shadow, "model_version": 4, "score": 0.3}])
    log.flush()
    watermark = log.scan("shadow", "churn")["received_at"][0].as_py()
    time.sleep(0.002)
    log.append([{**shadow, "model_version": 4, "score": 0.9}, {**shadow, "model_version": 5}])
    log.flush()
    rows = log.scan_received("shadow", "churn", after=watermark).to_pylist()
    assert [(row["model_version"], row["score"]) for row in rows] == [(5, None)]


def test_existing_ids_answers_from_the_indexes_without_opening_parquet(log: EventLog) -> None:
    for day in range(3):
        log.append(
            [
                prediction(
                    f"d{day}-{i}", entity_key=f"c{i}", event_time=DAY + dt.timedelta(days=day)
                )
                for i in range(4)
            ]
        )
        log.flush()
    log.append([prediction("tail-1")])  # still in a segment
    assert len(list(log.root.rglob("_*.ids"))) == 3
    for path in log.root.rglob("*.parquet"):
        path.write_bytes(b"not parquet")  # any read of a Parquet file would now fail
    wanted = ["d0-1", "d2-3", "tail-1", "d9-9", "other"]
    assert log.existing_ids("prediction", "churn", wanted) == {"d0-1", "d2-3", "tail-1"}
    assert log.existing_ids("outcome", "churn", wanted) == set()


def test_existing_ids_follows_erasure_compaction_retention_and_older_files(log: EventLog) -> None:
    for day in range(3):
        log.append(
            [
                prediction(
                    f"d{day}-{i}", entity_key=f"c{i}", event_time=DAY + dt.timedelta(days=day)
                )
                for i in range(4)
            ]
        )
        log.flush()
    every = [f"d{day}-{i}" for day in range(3) for i in range(4)]
    record_erasure(log.root, "churn", "c1", events_module.durable.now_us())  # tombstone only
    assert log.existing_ids("prediction", "churn", every) == {
        i for i in every if not i.endswith("-1")
    }
    assert log.erase("churn", "c2") == 3  # tombstone, then files and indexes rewritten
    left = {i for i in every if not i.endswith(("-1", "-2"))}
    assert log.existing_ids("prediction", "churn", every) == left
    log.append([prediction("d0-9", entity_key="c1")])  # after the erasure: kept
    log.flush()
    assert log.compact("prediction", "churn", DAY.date()) == 2
    assert log.existing_ids("prediction", "churn", [*every, "d0-9"]) == left | {"d0-9"}
    assert log.delete_before(DAY + dt.timedelta(days=1)) == 1
    assert log.existing_ids("prediction", "churn", every) == {
        i for i in left if not i.startswith("d0")
    }
    for index in log.root.rglob("_*.ids"):
        index.unlink()  # files written before indexes existed are read themselves
    assert log.existing_ids("prediction", "churn", every) == {
        i for i in left if not i.startswith("d0")
    }
    assert log.scan_received("prediction", "churn", after=LONG_AGO)["id"].to_pylist() == sorted(
        i for i in left if not i.startswith("d0")
    )


def test_a_profile_sync_reads_by_receive_time_after_its_watermark(
    log: EventLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from steward.data.profiles import Binning, ProfileStore

    store = ProfileStore(tmp_path / "profiles")
    binnings = {"score": Binning().fit([0.0, 1.0])}
    log.append([prediction(f"p{i}", score=i / 10) for i in range(10)])
    log.flush()
    first = store.sync(log, "churn", binnings, settle=dt.timedelta(0))
    assert sum(row.profile.count for row in first) == 0  # everything was stored, nothing settling
    watermark = store.watermark("churn")
    asked: list[dt.datetime | None] = []
    scan_received = log.scan_received

    def spy(kind: str, system: str, after: Any = None, until: Any = None) -> Any:
        asked.append(after)
        return scan_received(kind, system, after, until)

    monkeypatch.setattr(log, "scan_received", spy)
    monkeypatch.setattr(log, "scan", None)  # a sync never reads the whole log
    time.sleep(0.002)
    log.append([prediction("p10", score=0.5)])
    store.sync(log, "churn", binnings, settle=dt.timedelta(0))
    assert asked == [watermark]
    window = store.read("churn", DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1))
    assert window["score"].count == 11


def test_a_read_by_receive_time_looks_for_older_copies_on_the_dates_it_returns(
    log: EventLog,
) -> None:
    log.append([prediction("p1"), prediction("p2", event_time=DAY + dt.timedelta(days=1))])
    log.flush()
    watermark = max(log.scan("prediction", "churn")["received_at"].to_pylist())
    time.sleep(0.002)
    # Sent again: p1 with its own event time (a retry), p2 under another date.
    log.append([prediction("p1"), prediction("p2", event_time=DAY + dt.timedelta(days=5))])
    log.flush()
    fresh = log.scan_received("prediction", "churn", after=watermark)["id"].to_pylist()
    assert fresh == ["p2"]  # documented: the copy of 2026-11-23 is not looked for
    assert received_window(log, "prediction", watermark) == []
