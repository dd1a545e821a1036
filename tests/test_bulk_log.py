"""Bulk logging against a real uvicorn server: Arrow and JSON bodies, refusals, retries, kill -9.

``POST /v1/systems/{system}/predictions:log`` reads JSON or an Arrow IPC stream column-wise, checks
the inputs against the system's contract and appends the whole request with one fsync. What it
acknowledges is read back from the event log afterwards, with the values that were sent.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
import time
from typing import Any

import duckdb
import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml

from steward import Steward
from steward._util.frames import to_pandas_frame
from steward.client import Client
from steward.data.contracts import Contract, check_batch
from steward.data.events import EventLog
from steward.data.events.bulk import json_objects

from .conftest import CONFIG, Server

ARROW = "application/vnd.apache.arrow.stream"
CONTRACT = {
    "columns": {
        "tenure": {"type": "int", "min": 0, "on_violation": "reject"},
        "plan": {"type": "category", "categories": ["basic", "pro"], "on_violation": "flag"},
    }
}


@pytest.fixture
def running(workspace: Steward) -> Any:
    """``steward serve`` over a workspace whose ``churn`` system has a two-column contract."""
    config = yaml.safe_load(CONFIG)
    config["systems"][0]["contract"] = CONTRACT
    workspace.settings.config_path.write_text(yaml.safe_dump(config))
    workspace.apply()
    server = Server(workspace.settings.workspace, workspace.settings.database_url)
    server.start()
    yield server
    server.close()


def arrow_body(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def post(server: Server, body: bytes, content_type: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/systems/churn/predictions:log",
        content=body,
        headers={"content-type": content_type},
        timeout=120,
    )


def stored(workspace: Steward) -> dict[str, dict[str, Any]]:
    with EventLog(workspace.settings.events_dir) as events:
        rows = events.scan("prediction", "churn").to_pylist()
    return {row["id"]: row for row in rows}


def test_arrow_and_json_bodies_are_stored_with_the_values_sent(
    running: Server, workspace: Steward
) -> None:
    when = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
    table = pa.table(
        {
            "id": ["a0", "a1", "a2"],
            "entity_key": ["c0", "c1", None],
            "event_time": pa.array([when, when, None], pa.timestamp("ms", tz="UTC")),
            "score": [0.25, 0.5, 1.0],
            "decision": ["none", "call", None],
            "model_version": pa.array([3, 3, 4], pa.int32()),
            "latency_ms": [1.5, 2.0, None],
            "tenure": [3, 40, None],
            "plan": pa.array(["basic", "pro", 'say "hi"\n']).dictionary_encode(),
        }
    )
    response = post(running, arrow_body(table), ARROW)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 3
    # 'say "hi"' is not a plan: the contract flags it, and the prediction is logged all the same.
    assert [(item["column"], item["rule"]) for item in answer["violations"]] == [
        ("plan", "category")
    ]

    body = {
        "predictions": [
            {"id": "j0", "score": 0.75, "inputs": {"tenure": 7, "plan": "pro"}, "holdout": True},
            {"id": "j1", "event_time": "2026-11-20T10:00:00+01:00", "inputs": {"tenure": 0}},
        ]
    }
    response = post(running, json.dumps(body).encode(), "application/json")
    assert response.status_code == 200, response.text
    assert response.json() == {"system": "churn", "accepted": 2, "violations": []}

    with Client(running.url, timeout=120) as client:
        frame = pd.DataFrame({"id": ["p0", "p1"], "score": [0.1, 0.9], "tenure": [1, 2]})
        assert client.log_predictions("churn", frame) == 2
    running.stop()

    rows = stored(workspace)
    assert set(rows) == {"a0", "a1", "a2", "j0", "j1", "p0", "p1"}
    first = rows["a0"]
    assert (first["entity_key"], first["score"], first["decision"]) == ("c0", 0.25, "none")
    assert (first["model_version"], first["latency_ms"], first["holdout"]) == (3, 1.5, False)
    assert first["event_time"] == when
    assert json.loads(first["inputs"]) == {"tenure": 3, "plan": "basic"}
    assert json.loads(first["output"]) is None and first["violations"] is None
    third = rows["a2"]
    assert json.loads(third["inputs"]) == {"tenure": None, "plan": 'say "hi"\n'}
    [violation] = json.loads(third["violations"])
    assert (violation["column"], violation["example"]) == ("plan", 'say "hi"\n')
    assert third["event_time"] > when  # none sent: the receive time
    assert rows["j0"]["holdout"] is True and json.loads(rows["j0"]["inputs"])["plan"] == "pro"
    assert rows["j1"]["event_time"] == dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
    assert json.loads(rows["p1"]["inputs"]) == {"tenure": 2} and rows["p1"]["score"] == 0.9


def test_bad_bodies_get_a_problem_naming_the_record_column_and_value(
    running: Server, workspace: Steward
) -> None:
    good = {"id": ["x0", "x1"], "score": [0.1, 0.2], "tenure": [1, 2]}
    cases: list[tuple[bytes, str, int, list[str]]] = [
        # An Arrow column of the wrong type, a value out of range, a non-finite score.
        (
            arrow_body(pa.table({**good, "score": ["0.1", "0.2"]})),
            ARROW,
            422,
            ["'score'", "string"],
        ),
        (arrow_body(pa.table({**good, "model_version": [1, 0]})), ARROW, 422, ["[1]", "0"]),
        (
            arrow_body(pa.table({**good, "score": [0.5, float("nan")]})),
            ARROW,
            422,
            ["predictions[1].score", "nan"],
        ),
        (arrow_body(pa.table({**good, "id": ["x" * 201, "y"]})), ARROW, 422, ["predictions[0].id"]),
        (arrow_body(pa.table({**good, "holdout": [1, 0]})), ARROW, 422, ["'holdout'", "bool"]),
        (arrow_body(pa.table({**good, "inputs": [1, 2]})), ARROW, 422, ["'inputs'", "struct"]),
        (b"not an arrow stream", ARROW, 400, ["Arrow IPC stream"]),
        (arrow_body(pa.table({"id": pa.array([], pa.string())})), ARROW, 422, ["0 rows"]),
        # The contract's reject rule (tenure >= 0) is recorded, not enforced: see the next test.
        (
            json.dumps(
                {"predictions": [{"id": "j0", "inputs": {}}, {"id": "j1", "score": "high"}]}
            ).encode(),
            "application/json",
            422,
            ["predictions.1.score", "'high'"],
        ),
        (
            json.dumps({"predictions": [{"id": "j0", "sore": 0.4}]}).encode(),
            "application/json",
            422,
            ["predictions.0.sore", "Extra inputs"],
        ),
        (
            json.dumps({"predictions": [{"id": "j0", "latency_ms": -1}]}).encode(),
            "application/json",
            422,
            ["predictions.0.latency_ms", "-1"],
        ),
        (b'{"predictions": [', "application/json", 400, ["not valid JSON"]),
        (b"id,score\nx,1\n", "text/csv", 415, ["text/csv", ARROW]),
    ]
    for body, content_type, status, named in cases:
        response = post(running, body, content_type)
        assert response.status_code == status, (named, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        detail = response.json()["detail"]
        assert all(text in detail for text in named), (named, detail)
    running.stop()
    assert stored(workspace) == {}, "a refused request stored something"


def test_inputs_that_break_the_contract_are_logged_with_their_violations(
    running: Server, workspace: Steward
) -> None:
    body = {
        "predictions": [
            {"id": "ok", "inputs": {"tenure": 4, "plan": "pro"}},
            {"id": "neg", "inputs": {"tenure": -4, "plan": "pro"}},
        ]
    }
    response = post(running, json.dumps(body).encode(), "application/json")
    assert response.status_code == 200, response.text
    [violation] = response.json()["violations"]
    assert (violation["column"], violation["rule"], violation["first_row"]) == ("tenure", "min", 1)
    assert violation["example"] == -4
    running.stop()
    rows = stored(workspace)
    assert rows["ok"]["violations"] is None
    [row_violation] = json.loads(rows["neg"]["violations"])
    assert row_violation["example"] == -4 and "expects int >= 0" in row_violation["message"]


def test_a_retried_body_without_ids_is_stored_once(running: Server, workspace: Steward) -> None:
    table = pa.table(
        {"entity_key": ["c1", "c2", "c3"], "score": [0.1, 0.2, 0.3], "tenure": [1, 2, 3]}
    )
    body = {"predictions": [{"entity_key": "c9", "inputs": {"tenure": 9}}]}
    for _ in range(2):
        assert post(running, arrow_body(table), ARROW).status_code == 200
        assert post(running, json.dumps(body).encode(), "application/json").status_code == 200
    running.stop()
    rows = stored(workspace)
    assert len(rows) == 4
    assert sorted(row["entity_key"] for row in rows.values()) == ["c1", "c2", "c3", "c9"]


def stream(server: Server, acknowledged: list[str], stop: threading.Event) -> None:
    """Send Arrow and JSON batches of 500 until stopped; keep the ids the server acknowledged."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for batch in range(10_000):
            if stop.is_set():
                return
            ids = [f"b{batch}-{row}" for row in range(500)]
            if batch % 2:
                table = pa.table({"id": ids, "score": [0.5] * 500, "tenure": list(range(500))})
                content, kind = arrow_body(table), ARROW
            else:
                items = [{"id": item, "inputs": {"tenure": 1}} for item in ids]
                content, kind = json.dumps({"predictions": items}).encode(), "application/json"
            try:
                response = client.post(
                    "/v1/systems/churn/predictions:log",
                    content=content,
                    headers={"content-type": kind},
                )
            except httpx.TransportError:
                return  # the server died under us: what was acknowledged is what counts
            if response.status_code == 200:
                acknowledged.extend(ids)


@pytest.mark.slow
def test_sigkill_during_bulk_logging_keeps_every_acknowledged_event_once(
    running: Server, workspace: Steward
) -> None:
    acknowledged: list[str] = []
    stop = threading.Event()
    sender = threading.Thread(target=stream, args=(running, acknowledged, stop))
    sender.start()
    while len(acknowledged) < 5_000 and sender.is_alive():
        time.sleep(0.005)
    running.kill()  # SIGKILL while requests are in flight
    stop.set()
    sender.join(timeout=60)
    assert len(acknowledged) >= 5_000, running.log.read_text()[-3000:]
    before = len(acknowledged)

    running.start()
    stream_once = threading.Event()
    after: list[str] = []
    sender = threading.Thread(target=stream, args=(running, after, stream_once))
    sender.start()
    while len(after) < 1_000 and sender.is_alive():
        time.sleep(0.005)
    stream_once.set()
    sender.join(timeout=60)
    running.stop()

    with EventLog(workspace.settings.events_dir) as events:
        ids = events.scan("prediction", "churn").column("id").to_pylist()
    assert set(acknowledged) <= set(ids), f"{len(set(acknowledged) - set(ids))} acknowledged lost"
    assert len(ids) == len(set(ids)), "an event appears twice"
    assert before >= 5_000 and len(after) >= 1_000  # the restarted server logged again


def test_json_integers_past_the_exact_float_range_are_stored_exactly(
    running: Server, workspace: Steward
) -> None:
    # Arrow's JSON reader would read these as floats; such a body goes the exact way instead.
    big, mixed = 2**70 + 1, 10**18 + 1
    body = {
        "predictions": [
            {"id": "b0", "inputs": {"tenure": 1, "plan": "pro", "account": big, "ratio": mixed}},
            {"id": "b1", "inputs": {"tenure": 2, "plan": "pro", "account": big, "ratio": 0.5}},
        ]
    }
    response = post(running, json.dumps(body).encode(), "application/json")
    assert response.status_code == 200, response.text
    running.stop()
    rows = stored(workspace)
    assert json.loads(rows["b0"]["inputs"])["account"] == big
    assert json.loads(rows["b0"]["inputs"])["ratio"] == mixed
    assert json.loads(rows["b1"]["inputs"]) == {
        "tenure": 2,
        "plan": "pro",
        "account": big,
        "ratio": 0.5,
    }


def test_the_contract_check_reads_arrow_columns_as_it_reads_their_pandas_conversion() -> None:
    contract = Contract.from_dict(
        {
            "columns": {
                "tenure": {"type": "int", "min": 0, "max": 5, "nullable": False},
                "spend": {"type": "int", "min": 1},
                "share": {"type": "float", "max": 0.5, "nullable": False},
                "plan": {"type": "category", "categories": ["basic", ""], "nullable": False},
                "note": {"type": "string", "pattern": "^[ab]$"},
                "active": {"type": "bool", "nullable": False},
                "count": {"type": "bool"},
                "missing": {"type": "float"},
            },
            "extra_columns": "flag",
        }
    )
    table = pa.table(
        {
            "tenure": pa.array([3, -1, None, 9, 4], pa.int32()),
            "spend": [1.0, 2.5, float("nan"), None, float("inf")],
            "share": pa.array([0.25, None, 0.75, float("nan"), 0.5], pa.float32()),
            "plan": pa.array(["basic", "pro", None, "", " "], pa.large_string()),
            "note": ["a", "c", None, "b", "ab"],
            "active": [True, None, False, True, None],
            "count": [1, 0, 2, None, 1],
            "extra": ["x"] * 5,
        }
    )
    from_arrow = check_batch(contract, table)
    from_pandas = check_batch(contract, to_pandas_frame(table))
    assert [item.to_dict() for item in from_arrow.violations] == [
        item.to_dict() for item in from_pandas.violations
    ]
    assert from_arrow.rejected_mask.tolist() == from_pandas.rejected_mask.tolist()
    assert from_arrow.flagged_mask.tolist() == from_pandas.flagged_mask.tolist()
    assert {(item.column, item.rule) for item in from_arrow.violations} >= {
        ("tenure", "min"),
        ("tenure", "max"),
        ("tenure", "null"),
        ("spend", "type"),
        ("share", "max"),
        ("share", "null"),
        ("plan", "category"),
        ("note", "pattern"),
        ("active", "null"),
        ("count", "type"),
        ("extra", "extra_column"),
    }


def test_inputs_json_text_is_the_text_duckdb_writes_for_each_row() -> None:
    when = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
    plain = pa.table(
        {
            "plan": ["basic", "prö 😀", "a/b", ""],
            "maybe": ["x", None, "y", "z"],
            "tenure": pa.array([3, None, -7, 2**62], pa.int64()),
            "small": pa.array([1, 2, None, -3], pa.int8()),
            "charges": [97.0, -0.0, 29.85, None],
            "ratio": [1e21, 0.5, float("nan"), float("inf")],
            "active": [True, False, None, True],
        }
    )
    escaped = pa.table(
        {
            "note": ['say "hi"', "back\\slash", "line\nbreak", None],
            "kind": pa.array(["a", "b", None, "a"]).dictionary_encode(),
            "seen": pa.array([when, None, when, when], pa.timestamp("us", tz="UTC")),
            "tags": [[1, 2], [], None, [3]],
            "share": pa.array([0.1, None, 2.5, 1.0], pa.float32()),
            "user id": ["u1", "u2", "u3", "u4"],
        }
    )
    chunked = pa.concat_tables([plain.slice(0, 2), plain.slice(2)])
    for table in (plain, escaped, chunked, plain.slice(1, 2)):
        finite = [
            pc.if_else(pc.is_finite(column), column, None)
            if pa.types.is_floating(column.type)
            else column
            for column in table.columns
        ]
        rows = pa.table(finite, names=[f"c{index}" for index in range(table.num_columns)])
        keys = ", ".join(f'"{name}" := c{index}' for index, name in enumerate(table.column_names))
        connection = duckdb.connect()
        connection.register("logged", rows)
        query = f"SELECT to_json(struct_pack({keys}))::VARCHAR FROM logged"
        expected = connection.sql(query).fetchall()
        assert json_objects(table).to_pylist() == [text for (text,) in expected]
