"""Bad input against a real server: generated records, outcomes and log batches, valid and not.

Nothing a client sends may produce a 5xx; every refusal is a 422 (or a 404 for an id the server
does not know) in problem+json naming the field, never Python's internals; and every event the
server acknowledged is read back afterwards with the values that were sent.
"""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steward import Steward
from steward.data.events import EventLog

from .conftest import Server

pytestmark = pytest.mark.slow

SYSTEM = "churn"
#: What Python's own errors look like; a message meant for people never shows them.
INTERNALS = ("NoneType", "object is not", "Traceback", "has no attribute", "unhashable")

# Text with the characters that broke the log: a lone surrogate, NUL, emoji, very long strings.
texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["\ud800", "a\udfffb", "\x00", "😀", "x" * 300, "Month-to-month"]),
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
keys = st.one_of(
    st.none(),
    texts,
    st.integers(-5, 10**6),
    st.floats(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = draw(st.dictionaries(texts, scalars, max_size=4))
    if draw(st.booleans()):
        record["tenure"] = draw(st.one_of(st.integers(0, 72), scalars))
    for reserved in ("id", "entity_key"):
        if draw(st.booleans()):
            record[reserved] = draw(keys)
    return record


@st.composite
def logged(draw: st.DrawFn) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": draw(st.one_of(texts, st.just("x" * 1_000_000), st.integers())),
        "entity_key": draw(keys),
        "inputs": draw(st.dictionaries(texts, scalars, max_size=3)),
    }
    for field, values in (
        ("score", numbers),
        ("latency_ms", numbers),
        ("model_version", st.integers(-(2**40), 2**40)),
        ("decision", texts),
    ):
        if draw(st.booleans()):
            item[field] = draw(values)
    return item


# Well-formed items, mixed in so that some batches are accepted and their storage is checked.
good_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)
good_logged = st.fixed_dictionaries(
    {
        "id": good_text,
        "entity_key": good_text,
        "inputs": st.dictionaries(good_text, st.one_of(st.integers(-9, 9), good_text), max_size=3),
        "score": st.floats(0, 1),
        "latency_ms": st.floats(0, 1e4),
        "model_version": st.integers(1, 5),
        "decision": good_text,
    }
)
good_outcomes = st.fixed_dictionaries(
    {"entity_key": good_text, "value": st.one_of(st.floats(-1e9, 1e9), st.booleans(), good_text)}
)


@st.composite
def outcomes(draw: st.DrawFn) -> dict[str, Any]:
    item: dict[str, Any] = {"value": draw(st.one_of(numbers, st.booleans(), texts))}
    item[draw(st.sampled_from(["prediction_id", "entity_key"]))] = draw(keys)
    return item


def _post(url: str, path: str, payload: dict[str, Any]) -> httpx.Response:
    body = json.dumps(payload, allow_nan=True)  # as a careless client would: NaN, Infinity
    return httpx.post(
        f"{url}/v1/systems/{SYSTEM}/{path}",
        content=body,
        headers={"content-type": "application/json"},
        timeout=60,
    )


def _check_refusal(response: httpx.Response, payload: dict[str, Any]) -> None:
    assert response.status_code < 500, response.text
    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    detail = problem["detail"]
    assert not any(text in detail for text in INTERNALS), detail
    named = {str(key) for item in _items(payload) for key in item} | {
        "records",
        "predictions",
        "outcomes",
        "inputs",
        "body",
        "prediction",
        "id",
    }
    assert any(name and name in detail for name in named), detail


def _items(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for values in payload.values() for item in values if isinstance(item, dict)]


def _same(sent: Any, stored: Any) -> bool:
    if isinstance(sent, float) and isinstance(stored, float):
        return math.isclose(sent, stored, rel_tol=1e-12) or sent == stored
    return bool(sent == stored)


@pytest.fixture
def running(server: Server) -> Any:
    server.start()
    return server


def test_generated_input_never_fails_the_server_and_what_it_accepts_is_kept(
    running: Server, workspace: Steward
) -> None:
    accepted: dict[str, list[dict[str, Any]]] = {"prediction": [], "outcome": []}

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        batch=st.lists(records(), min_size=1, max_size=3),
        log=st.lists(st.one_of(good_logged, logged()), min_size=1, max_size=3),
        sent=st.lists(st.one_of(good_outcomes, outcomes()), min_size=1, max_size=3),
    )
    def exercise(
        batch: list[dict[str, Any]], log: list[dict[str, Any]], sent: list[dict[str, Any]]
    ) -> None:
        for path, payload in (
            ("predict", {"records": batch}),
            ("predictions:log", {"predictions": log}),
            ("outcomes", {"outcomes": sent}),
        ):
            response = _post(running.url, path, payload)
            if response.status_code != 200:
                _check_refusal(response, payload)
            elif path == "predictions:log":
                accepted["prediction"] += log
            elif path == "outcomes":
                ids = response.json()["ids"]
                accepted["outcome"] += [
                    {**item, "id": i} for item, i in zip(sent, ids, strict=True)
                ]

    exercise()
    running.stop()  # rolls every acknowledged event into Parquet
    with EventLog(workspace.settings.events_dir) as events:
        stored = {
            kind: {row["id"]: row for row in events.scan(kind, SYSTEM).to_pylist()}
            for kind in accepted
        }
    # A prediction sent again under its id is a retry: the log keeps the first copy (an outcome
    # sent again is a correction: the last). One sent without an id got a new one.
    first: dict[str, dict[str, Any]] = {}
    for item in accepted["prediction"]:
        if item["id"] not in ("", None):
            first.setdefault(str(item["id"]), item)
    assert first, "no generated log batch was accepted: the test would prove nothing"
    for item in first.values():
        row = stored["prediction"][str(item["id"])]
        for field in ("score", "latency_ms", "model_version", "decision"):
            if field in item:
                assert _same(item[field], row[field]), (field, item[field], row[field])
        assert json.loads(row["inputs"]) == item["inputs"]
    assert accepted["outcome"], "no generated outcome was accepted: the test would prove nothing"
    for item in {item["id"]: item for item in accepted["outcome"]}.values():
        row = stored["outcome"][item["id"]]
        value = item["value"]
        if isinstance(value, str):
            assert row["value_text"] == value
        else:
            assert _same(float(value), row["value"]), (value, row["value"])
