"""Micro-batching: concurrent requests share model calls, and each gets exactly what it would alone.

The end-to-end test runs the demo's champion (gradient-boosted trees) under a real uvicorn server
with many concurrent clients, some of them sending records the contract rejects or the model cannot
score, and checks every answer against the model called directly on that one record, and every
acknowledged prediction in the log exactly once.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml

from steward import Steward
from steward.data.contracts import infer_contract
from steward.data.events import EventLog
from steward.delivery.batching import Batcher
from steward.delivery.serving import Service
from steward.demo import train_churn_model
from steward.errors import InvalidInputError
from steward.model.policy import Policy, decide

from .conftest import Server

POLICY = {"thresholds": [{"at": 0.5, "action": "contact"}], "holdout": 0.1}


class HeldRun:
    """A model call for a ``Batcher`` that records each batch, then waits for ``release``."""

    def __init__(self, factor: int) -> None:
        self.started, self.release = threading.Event(), threading.Event()
        self.batches: list[list[int]] = []
        self.factor = factor

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(items)
        self.started.set()
        self.release.wait(10)
        return [item * self.factor for item in items]


def test_items_queued_while_the_worker_is_busy_are_served_in_one_batch() -> None:
    run = HeldRun(factor=10)
    started, release, batches = run.started, run.release, run.batches
    batcher: Batcher[int, int] = Batcher(run, name="test", max_records=4, max_wait=0.0)
    try:
        first = batcher.submit(0)
        assert started.wait(10)
        queued = [batcher.submit(item) for item in range(1, 7)]
        release.set()
        assert first.result(10) == 0
        assert [future.result(10) for future in queued] == [10, 20, 30, 40, 50, 60]
    finally:
        batcher.close()
    assert batches == [[0], [1, 2, 3, 4], [5, 6]]


def test_after_a_lone_batch_the_worker_still_waits_for_as_many_as_a_recent_batch_held() -> None:
    """Batches of 4 then 1: the next item still waits (within ``max_wait``) for company.

    Remembering only the last batch (1), the worker would serve 6 alone; remembering the 4, it
    waits, and 7, sent while it waits, joins 6. That keeps a set of concurrent callers from
    splitting for good into halves served in turn.
    """
    run = HeldRun(factor=1)
    started, release, batches = run.started, run.release, run.batches
    batcher: Batcher[int, int] = Batcher(run, name="test", max_records=8, max_wait=2.0)
    try:
        first = batcher.submit(0)
        assert started.wait(10)
        four = [batcher.submit(item) for item in (1, 2, 3, 4)]
        release.set()
        assert [future.result(10) for future in [first, *four]] == [0, 1, 2, 3, 4]
        assert batcher.submit(5).result(10) == 5  # alone, after waiting max_wait for company
        sixth = batcher.submit(6)
        time.sleep(0.2)  # the worker has taken 6 and waits for more
        seventh = batcher.submit(7)
        assert (sixth.result(10), seventh.result(10)) == (6, 7)
    finally:
        batcher.close()
    assert batches == [[0], [1, 2, 3, 4], [5], [6, 7]]


def test_a_failing_item_fails_only_its_own_request() -> None:
    def run(items: list[int]) -> list[int | BaseException]:
        return [InvalidInputError(f"item {item} is odd") if item % 2 else item for item in items]

    batcher: Batcher[int, int] = Batcher(run, name="test", max_records=8, max_wait=0.01)
    try:
        futures = [batcher.submit(item) for item in range(6)]
        for item, future in enumerate(futures):
            if item % 2:
                with pytest.raises(InvalidInputError, match=f"item {item} is odd"):
                    future.result(10)
            else:
                assert future.result(10) == item
    finally:
        batcher.close()
    with pytest.raises(Exception, match="closed"):
        batcher.submit(1)


def test_a_batch_that_raises_fails_each_caller_and_the_worker_lives_on() -> None:
    calls: list[list[str]] = []

    def run(items: list[str]) -> list[str]:
        calls.append(items)
        if "boom" in items:
            raise RuntimeError("the whole batch broke")
        return [item.upper() for item in items]

    batcher: Batcher[str, str] = Batcher(run, name="test", max_records=1, max_wait=0.0)
    try:
        with pytest.raises(RuntimeError, match="the whole batch broke"):
            batcher.submit("boom").result(10)
        assert batcher.submit("fine").result(10) == "FINE"
    finally:
        batcher.close()


def test_batch_limits_are_checked() -> None:
    with pytest.raises(InvalidInputError, match="max_records >= 1"):
        Batcher(lambda items: items, name="test", max_records=0)


def test_a_model_that_scores_rows_differently_in_a_batch_is_scored_request_by_request(
    workspace: Steward, telco_model: Any, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    """Logistic regression's BLAS dot product can differ in the last bit between a one-row and a
    many-row call; served scores must still equal the one-record call exactly."""
    workspace.register_model(telco_model, system="churn")
    workspace.move_alias("churn", "champion", 1)
    frame, _ = telco
    records = frame.head(96).to_dict(orient="records")
    service = Service(workspace, workspace.events, max_batch_records=32, max_wait_ms=20)
    try:
        service.predict("churn", records[:1])
        with ThreadPoolExecutor(max_workers=16) as pool:
            served = list(pool.map(lambda record: service.predict("churn", [record]), records))
    finally:
        service.close()
    for record, (result,) in zip(records, served, strict=True):
        features = pd.DataFrame([record]).drop(columns=["customerID"])
        assert result.score == float(telco_model.predict_proba(features)[0, 1])


@pytest.fixture
def champion(workspace: Steward, telco: tuple[pd.DataFrame, pd.Series]) -> Any:
    """The demo's champion, gradient-boosted trees, behind a contract and a policy."""
    frame, target = telco
    contract = infer_contract(frame, name="churn").to_dict()
    contract.pop("version")
    config = yaml.safe_load(workspace.settings.config_path.read_text())
    config["systems"][0].update(contract=contract, policy=POLICY)
    workspace.settings.config_path.write_text(yaml.safe_dump(config))
    workspace.apply()
    model = train_churn_model(frame, target, boosting=True)
    workspace.register_model(model, system="churn")
    workspace.move_alias("churn", "champion", 1)
    return model


def send(url: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    with httpx.Client(base_url=url, timeout=120) as client:
        return [client.post("/v1/systems/churn/predict", json=body) for body in bodies]


def test_concurrent_clients_get_exactly_the_direct_model_call_and_each_event_is_logged_once(
    workspace: Steward, champion: Any, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    frame, _ = telco
    records = frame.head(240).to_dict(orient="records")
    bodies: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        if index % 40 == 7:  # refused by the contract, alone
            record = {**record, "tenure": -5}
        elif index % 40 == 23:  # out of contract in another column
            record = {**record, "SeniorCitizen": 3}
        bodies.append({"records": [{**record, "id": f"p-{index}"}]})
    bodies.append(
        {"records": [{**records[0], "id": "several-0"}, {**records[1], "id": "several-1"}]}
    )
    server = Server(workspace.settings.workspace, workspace.settings.database_url)
    server.start()
    try:
        clients = 24
        with ThreadPoolExecutor(max_workers=clients) as pool:
            chunks = [bodies[start::clients] for start in range(clients)]
            answered = [
                response
                for responses in pool.map(lambda chunk: send(server.url, chunk), chunks)
                for response in responses
            ]
        server.stop()
    finally:
        server.close()
    by_id: dict[str, dict[str, Any]] = {}
    refused = 0
    for response in answered:
        if response.status_code == 422:
            assert "tenure" in response.text or "SeniorCitizen" in response.text
            refused += 1
            continue
        assert response.status_code == 200, response.text
        for prediction in response.json()["predictions"]:
            by_id[prediction["id"]] = prediction
    assert refused == 12
    assert len(by_id) == len(bodies) - refused + 1
    policy = Policy.from_dict(POLICY)
    lookup = {f"p-{index}": record for index, record in enumerate(records)}
    lookup.update({"several-0": records[0], "several-1": records[1]})
    for prediction_id, prediction in by_id.items():
        record = lookup[prediction_id]
        features = pd.DataFrame([record]).drop(columns=["customerID"])
        score = float(champion.predict_proba(features)[0, 1])
        decision = decide(policy, score, record["customerID"])
        assert prediction["score"] == score
        assert (prediction["decision"], prediction["holdout"]) == (
            decision.action,
            decision.holdout,
        )
    with EventLog(workspace.settings.events_dir) as log:
        logged = log.scan("prediction", "churn").to_pandas()
    assert sorted(logged["id"]) == sorted(by_id)
    for row in logged.itertuples():
        assert row.score == by_id[row.id]["score"]
        assert row.decision == by_id[row.id]["decision"]
        assert bool(row.holdout) == by_id[row.id]["holdout"]


def test_a_blocking_caller_is_served_in_its_own_thread_when_the_worker_is_idle() -> None:
    threads: list[str] = []

    def run(items: list[int]) -> list[int]:
        threads.append(threading.current_thread().name)
        return [item + 1 for item in items]

    batcher: Batcher[int, int] = Batcher(run, name="test")
    try:
        assert batcher.call(1) == 2
        assert batcher.submit(2).result(10) == 3
    finally:
        batcher.close()
    assert threads == [threading.current_thread().name, "steward-batch-test"]
