"""The Python client and the batching logger against a real server."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pandas as pd
import pytest

from steward import Steward
from steward.client import BatchingLogger, Client
from steward.data.events import EventLog
from steward.errors import InvalidInputError, NotFoundError, StoreError

from .conftest import Server, free_port


@pytest.fixture
def running(server: Server) -> Any:
    server.start()
    return server


def test_client_predicts_logs_and_reports_errors_as_steward_errors(
    running: Server, workspace: Steward, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    frame, _ = telco
    records = json.loads(frame.head(3).to_json(orient="records"))
    with Client(running.url, timeout=120) as client:
        results = client.predict("churn", records)
        assert [r["model_version"] for r in results] == [1, 1, 1]
        ids = client.log_outcomes("churn", [{"prediction_id": results[0]["id"], "value": 1}])
        assert len(ids) == 1
        with pytest.raises(NotFoundError, match="unknown system 'fraud'"):
            client.predict("fraud", records)
        with BatchingLogger(client, "churn", batch_size=500, flush_seconds=0.2) as batching:
            for index in range(1200):
                batching.log(
                    {"tenure": index % 72}, score=0.5, entity_key=f"c{index}", id=f"ext-{index}"
                )
        assert (batching.sent, batching.dropped, batching.failed) == (1200, 0, 0)
    running.stop()
    with EventLog(workspace.settings.events_dir) as events:
        assert events.count("prediction", "churn") == 3 + 1200
        assert events.count("outcome", "churn") == 1


def test_batching_logger_never_blocks_when_the_server_is_down() -> None:
    client = Client(f"http://127.0.0.1:{free_port()}", timeout=0.5)
    batching = BatchingLogger(client, "churn", batch_size=10, flush_seconds=0.05, max_queue=100)
    started = time.perf_counter()
    for index in range(5000):
        batching.log({"x": index})
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0  # 5,000 calls that would each wait on a dead server if they blocked
    assert batching.dropped > 0
    batching.close(timeout=30)
    assert batching.failed > 0 and batching.sent == 0
    with pytest.raises(StoreError, match="cannot reach the Steward server"):
        client.predict("churn", [{"x": 1}])
    client.close()


def test_batching_logger_refuses_a_url_where_a_client_belongs() -> None:
    with pytest.raises(InvalidInputError, match=r"takes a Client, got str .*Client\('http"):
        BatchingLogger("http://127.0.0.1:8000", "churn")  # type: ignore[arg-type]
    client = Client("http://127.0.0.1:1")
    for bad in ({"batch_size": 0}, {"flush_seconds": -1}, {"max_queue": "many"}):
        with pytest.raises(InvalidInputError, match=next(iter(bad))):
            BatchingLogger(client, "churn", **bad)  # type: ignore[arg-type]
    client.close()


def test_batching_logger_that_cannot_send_says_so_and_counts_every_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A record the JSON encoder refuses used to kill the thread: nothing sent, nothing counted."""
    client = Client(f"http://127.0.0.1:{free_port()}", timeout=0.5)
    with (
        caplog.at_level(logging.WARNING, logger="steward.client"),
        BatchingLogger(client, "churn", batch_size=5, flush_seconds=0.05) as batching,
    ):
        for index in range(20):
            batching.log({"x": object() if index % 2 else index})
    assert batching.sent + batching.failed + batching.dropped == 20
    assert batching.failed == 20 and batching.last_error
    assert any("lost predictions" in record.getMessage() for record in caplog.records)
    client.close()
