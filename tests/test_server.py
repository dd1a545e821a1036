"""End to end on a real uvicorn server: kill -9 mid-stream loses nothing that was acknowledged.

The stream carries predictions, their outcomes and LLM calls, so every kind of event is tested,
with the event log on local disk and with its files on the local S3 server.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml

from steward import Steward
from steward.data.events import EventLog

from .conftest import Server


def stream(
    server: Server,
    records: list[dict[str, Any]],
    acknowledged: dict[str, list[str]],
    stop: threading.Event,
) -> None:
    """Send predictions and outcomes until stopped; keep the ids the server acknowledged."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for index, record in enumerate(records):
            if stop.is_set():
                return
            prediction_id = f"p-{index}"
            try:
                response = client.post(
                    "/v1/systems/churn/predict", json={"records": [{**record, "id": prediction_id}]}
                )
                if response.status_code != 200:
                    acknowledged.setdefault("refused", []).append(response.text)
                    continue
                acknowledged["predictions"].append(prediction_id)
                response = client.post(
                    "/v1/systems/churn/outcomes",
                    json={
                        "outcomes": [
                            {"id": f"o-{index}", "prediction_id": prediction_id, "value": index % 2}
                        ]
                    },
                )
                if response.status_code == 200:
                    acknowledged["outcomes"].append(f"o-{index}")
                call = {
                    "id": f"c-{index}",
                    "request_model": "gpt-4o-mini",
                    "provider": "openai",
                    "input_tokens": 40 + index,
                    "output_tokens": 12,
                    "latency_ms": 300.0,
                }
                response = client.post(
                    "/v1/systems/assistant/llm-calls:log", json={"calls": [call]}
                )
                if response.status_code == 200:
                    acknowledged["calls"].append(f"c-{index}")
            except httpx.TransportError:
                return  # the server died under us: what was acknowledged is what counts


@pytest.mark.slow
@pytest.mark.parametrize(
    ("database_url", "storage"),
    [("sqlite", "local disk"), ("postgresql", "local disk"), ("postgresql", "object store")],
    indirect=["database_url"],
)
def test_sigkill_mid_stream_keeps_every_acknowledged_event_exactly_once(
    request: pytest.FixtureRequest,
    storage: str,
    server: Server,
    workspace: Steward,
    telco: tuple[pd.DataFrame, pd.Series],
) -> None:
    remote = request.getfixturevalue("s3_url") if storage == "object store" else None
    if remote is not None:  # the event log's files on the local S3 server
        server.environment = {"STEWARD_EVENTS_URL": remote, "STEWARD_EVENTS_SYNC_SECONDS": "0.5"}
    frame, _ = telco
    records = json.loads(frame.head(3000).to_json(orient="records"))
    acknowledged: dict[str, list[str]] = {"predictions": [], "outcomes": [], "calls": []}
    config = yaml.safe_load(workspace.settings.config_path.read_text())
    config["systems"].append({"name": "assistant", "task": "llm"})  # LLM calls ride along
    workspace.settings.config_path.write_text(yaml.safe_dump(config))
    workspace.apply()
    server.start()
    warm = httpx.post(
        f"{server.url}/v1/systems/churn/predict", json={"records": records[:1]}, timeout=120
    )  # loads the model once, so the stream measures serving only
    assert warm.status_code == 200, warm.text
    stop = threading.Event()
    sender = threading.Thread(target=stream, args=(server, records[:2000], acknowledged, stop))
    sender.start()
    while len(acknowledged["predictions"]) < 150 and sender.is_alive():
        time.sleep(0.01)
    server.kill()  # SIGKILL while requests are in flight
    stop.set()
    sender.join(timeout=30)
    before_crash = len(acknowledged["predictions"])
    assert before_crash >= 150, (
        acknowledged.get("refused", [])[:3],
        server.log.read_text()[-3000:],
    )

    server.start()
    stream(server, records[2000:2100], acknowledged, threading.Event())
    server.stop()

    # on object storage, read what the store holds, through a folder of another machine's
    reader = (
        EventLog(workspace.settings.events_dir)
        if remote is None
        else EventLog(workspace.settings.workspace / "elsewhere", remote=remote)
    )
    with reader as events:
        predictions = events.scan("prediction", "churn").to_pandas()
        outcomes = events.scan("outcome", "churn").to_pandas()
        calls = events.scan("llm_call", "assistant").to_pandas()
    prediction_ids = predictions["id"].tolist()
    assert set(acknowledged["predictions"]) <= set(prediction_ids)
    assert len(prediction_ids) == len(set(prediction_ids)), "an event appears twice"
    outcome_ids = outcomes["id"].tolist()
    assert set(acknowledged["outcomes"]) <= set(outcome_ids)
    assert len(outcome_ids) == len(set(outcome_ids))
    call_ids = calls["id"].tolist()
    assert set(acknowledged["calls"]) <= set(call_ids)
    assert len(call_ids) == len(set(call_ids))
    assert (
        len(acknowledged["calls"]) >= 150 and calls["priced"].all()
    )  # gpt-4o-mini is in the table
    assert len(acknowledged["predictions"]) > before_crash  # the restarted server served again
