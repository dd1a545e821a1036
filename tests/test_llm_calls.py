"""Logging LLM calls: checked at the door, priced once at the call's own date, texts per policy."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from steward.core import Steward
from steward.data.events import EventLog

from .test_web import Api

RATES = {"input": 1.0, "cached_input": 0.25, "output": 4.0}  # dollars per million tokens
LATER = {"input": 2.0, "cached_input": 0.5, "output": 8.0}


def config(call_text: str = "keep") -> str:
    return yaml.safe_dump(
        {
            "version": 1,
            "systems": [
                {"name": "churn", "task": "binary"},
                {
                    "name": "assistant",
                    "task": "llm",
                    "call_text": call_text,
                    "prices": {
                        "house-model": [
                            {"valid_from": "2026-11-01", **RATES},
                            {"valid_from": "2026-11-15T12:00:00Z", **LATER},
                        ]
                    },
                },
            ],
        }
    )


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "steward.yaml").write_text(config())
    steward = Steward.open(root)
    steward.init()
    steward.apply()
    with EventLog(tmp_path / "events") as events:
        served = Api(steward, events)
        yield served
        served.app.state.service.close()
    steward.close()


def call(**fields: Any) -> dict[str, Any]:
    return {
        "provider": "acme",
        "request_model": "house-model",
        "input_tokens": 1_000,
        "cache_read_tokens": 600,
        "output_tokens": 300,
        "reasoning_tokens": 100,
        "finish_reasons": ["stop"],
        "latency_ms": 420.0,
        "input_text": "Where is my parcel?",
        "output_text": "It left the depot this morning.",
        **fields,
    }


def hand_cost(rates: dict[str, float], uncached: int, cached: int, output: int) -> float:
    return (
        uncached * rates["input"] + cached * rates["cached_input"] + output * rates["output"]
    ) / 1e6


def test_a_call_is_stored_once_priced_at_its_own_dates_rates(api: Api) -> None:
    before = call(id="c1", event_time="2026-11-15T11:59:59Z")
    after = call(id="c2", event_time="2026-11-15T12:00:00Z")
    answer = api.request(
        "POST", "/v1/systems/assistant/llm-calls:log", json={"calls": [before, after]}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = [hand_cost(RATES, 400, 600, 300), hand_cost(LATER, 400, 600, 300)]
    assert body["accepted"] == 2 and body["unpriced"] == 0
    assert body["cost"] == pytest.approx(sum(expected), abs=1e-9)
    # Cached tokens at the cached rate only: not also at the input rate.
    assert expected[0] != pytest.approx(hand_cost(RATES, 1_000, 600, 300))

    api.events.flush()
    stored = api.events.scan("llm_call", "assistant").to_pylist()
    assert [row["id"] for row in stored] == ["c1", "c2"]
    assert [row["cost"] for row in stored] == pytest.approx(expected, abs=1e-9)
    assert stored[0]["price_source"] == "steward.yaml (valid from 2026-11-01)"
    assert stored[1]["event_time"] == datetime(2026, 11, 15, 12, tzinfo=UTC)
    assert stored[0]["finish_reasons"] == '["stop"]'
    # Sent again (a retry), the same ids are the same calls.
    api.request("POST", "/v1/systems/assistant/llm-calls:log", json={"calls": [before]})
    api.events.flush()
    assert len(api.events.scan("llm_call", "assistant")) == 2


def test_a_model_with_no_price_is_unpriced_not_free(api: Api) -> None:
    answer = api.request(
        "POST",
        "/v1/systems/assistant/llm-calls:log",
        json={"calls": [call(id="u1", request_model="mystery-model-9")]},
    )
    assert answer.json()["unpriced"] == 1 and answer.json()["cost"] == 0
    api.events.flush()
    [row] = api.events.scan("llm_call", "assistant").to_pylist()
    assert row["cost"] is None and row["priced"] is False
    assert "no price for provider acme model mystery-model-9" in row["price_source"]


def test_texts_are_hashed_or_dropped_per_system(tmp_path: Path) -> None:
    for policy in ("hash", "drop"):
        root = tmp_path / policy
        root.mkdir()
        (root / "steward.yaml").write_text(config(policy))
        with Steward.open(root) as steward, EventLog(root / "events") as events:
            steward.init()
            steward.apply()
            served = Api(steward, events)
            sent = call(id="t1", event_time="2026-11-20T00:00:00Z")
            served.request("POST", "/v1/systems/assistant/llm-calls:log", json={"calls": [sent]})
            served.app.state.service.close()
            events.flush()
            [row] = events.scan("llm_call", "assistant").to_pylist()
        digest = "sha256:" + hashlib.sha256(sent["output_text"].encode()).hexdigest()
        assert row["output_text"] == (digest if policy == "hash" else None)


@pytest.mark.parametrize(
    ("sent", "status", "message"),
    [
        ({"calls": [call(cache_read_tokens=2_000)]}, 422, "exceed input_tokens (1000)"),
        ({"calls": [call(reasoning_tokens=400)]}, 422, "reasoning_tokens (400) exceed"),
        ({"calls": [call(tokens=3)]}, 422, "tokens: unknown field"),
        ({"calls": [call(input_tokens=-1)]}, 422, "input_tokens"),
        ({"calls": [{"input_tokens": 3}]}, 422, "request_model"),
    ],
)
def test_bad_calls_are_refused_naming_the_field(
    api: Api, sent: dict[str, Any], status: int, message: str
) -> None:
    answer = api.request("POST", "/v1/systems/assistant/llm-calls:log", json=sent)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["detail"]
    api.events.flush()
    assert len(api.events.scan("llm_call", "assistant")) == 0  # all or nothing


def test_calls_go_to_llm_systems_only_and_read_back(api: Api) -> None:
    wrong = api.request("POST", "/v1/systems/churn/llm-calls:log", json={"calls": [call()]})
    assert wrong.status_code == 422 and "task 'binary'" in wrong.json()["detail"]
    now = datetime.now(UTC).isoformat()
    api.request(
        "POST",
        "/v1/systems/assistant/llm-calls:log",
        json={"calls": [call(id="r1", event_time=now)]},
    )
    listed = api.request("GET", "/v1/systems/assistant/llm-calls").json()
    assert [row["id"] for row in listed["calls"]] == ["r1"]
    assert listed["calls"][0]["output_tokens"] == 300


def test_cli_shows_calls_and_cost_by_day_and_prompt(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from steward.cli.main import cli
    from steward.llm.calls import record_calls
    from steward.llm.cost import PriceBook

    root = tmp_path / "ws"
    root.mkdir()
    (root / "steward.yaml").write_text(config())
    now = datetime.now(UTC)
    with Steward.open(root) as steward:
        steward.init()
        steward.apply()
        book = PriceBook({"house-model": [{"valid_from": "2026-11-01", **RATES}]})
        sent = [
            call(id="a", event_time=now.isoformat(), prompt="answer", prompt_version=1),
            call(id="b", event_time=now.isoformat(), prompt="answer", prompt_version=2),
            call(id="c", event_time=now.isoformat(), request_model="mystery"),
        ]
        record_calls(steward.events, "assistant", sent, prices=book)
        steward.events.flush()

    def run(*args: str) -> str:
        result = CliRunner().invoke(cli, ["--workspace", str(root), "llm", *args])
        assert result.exit_code == 0, result.output
        return result.output

    listing = run("calls", "assistant")
    assert "answer v2" in listing and "unpriced" in listing and "house-model" in listing
    by_prompt = run("cost", "assistant", "--by", "prompt")
    one = hand_cost(RATES, 400, 600, 300)
    assert f"{one:.4f}" in by_prompt and "answer v1" in by_prompt and "(no prompt)" in by_prompt
    assert "1 call(s) have no price" in by_prompt
    by_day = run("cost", "assistant", "--by", "day")
    assert f"{2 * one:.4f}" in by_day and now.strftime("%Y-%m-%d") in by_day


def test_a_read_window_with_no_zone_is_utc(api: Api) -> None:
    sent = call(id="z1", event_time="2026-11-20T10:00:00Z")
    api.request("POST", "/v1/systems/assistant/llm-calls:log", json={"calls": [sent]})
    window = "start=2026-11-20T09:00:00&end=2026-11-20T11:00:00"
    listed = api.request("GET", f"/v1/systems/assistant/llm-calls?{window}")
    assert listed.status_code == 200 and [row["id"] for row in listed.json()["calls"]] == ["z1"]
