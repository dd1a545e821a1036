"""Serving without HTTP: what a model cannot score is named, column by column, and a running
service follows alias moves and suspensions made elsewhere, checking the store cheaply."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from prometheus_client import generate_latest
from sqlalchemy import event

from steward import Steward
from steward.delivery import suspension
from steward.delivery.serving import Service
from steward.demo import train_churn_model
from steward.errors import InvalidInputError
from steward.web.metrics import Metrics


def test_a_scoring_error_names_every_missing_and_unexpected_column(
    workspace: Steward, telco_model: object, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    """scikit-learn's message lists a few columns then cuts off; the caller needs all of them."""
    workspace.register_model(telco_model, system="churn")  # no contract on this system
    workspace.move_alias("churn", "champion", 1)
    frame, _ = telco
    record = frame.drop(columns=["customerID", "tenure", "Contract"]).head(1)
    record = record.rename(columns={"MonthlyCharges": "monthly_charges"})
    service = Service(workspace, workspace.events)
    try:
        with pytest.raises(InvalidInputError) as caught:
            service.predict("churn", record.to_dict(orient="records"))
    finally:
        service.close()
    message = str(caught.value)
    missing = message.split("missing 3 column(s) the model takes: ")[1].split(";")[0]
    assert sorted(missing.split(", ")) == ["'Contract'", "'MonthlyCharges'", "'tenure'"]
    assert "1 column(s) the model does not take: 'monthly_charges'" in message


# --- keeping a running service current ------------------------------------------------------------


def wait_until(condition: Callable[[], Any], seconds: float, what: str) -> float:
    """Seconds until ``condition`` held, looking every 5 ms; fails after ``seconds``."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        time.sleep(0.005)
    raise AssertionError(f"{what} did not happen within {seconds} s")


def champion_seen(service: Service) -> int | None:
    return next(
        (runtime.champion for runtime, _ in service.seen() if runtime.name == "churn"), None
    )


@pytest.fixture
def two_versions(
    workspace: Steward, telco_model: object, telco: tuple[pd.DataFrame, pd.Series]
) -> list[dict[str, Any]]:
    frame, target = telco
    workspace.register_model(telco_model, system="churn")
    workspace.register_model(train_churn_model(frame[:600], target[:600], C=0.05), system="churn")
    workspace.move_alias("churn", "champion", 1)
    return frame.head(3).to_dict(orient="records")  # type: ignore[no-any-return]


def test_a_running_service_sees_a_move_and_a_suspension_within_its_refresh(
    workspace: Steward, two_versions: list[dict[str, Any]]
) -> None:
    service = Service(workspace, workspace.events, refresh_seconds=0.05)
    service.start()  # as the server's lifespan does
    try:
        assert {result.model_version for result in service.predict("churn", two_versions)} == {1}
        workspace.move_alias("churn", "champion", 2)
        seen = wait_until(lambda: champion_seen(service) == 2, 1.0, "the move being seen")
        wait_until(lambda: service.runtime("churn").champion == 2, 5.0, "version 2 being served")
        assert {result.model_version for result in service.predict("churn", two_versions)} == {2}
        suspension.suspend(workspace, "churn", reason="drift")
        wait_until(lambda: service.runtime("churn").suspension is not None, 1.0, "the suspension")
        assert all(result.suspended for result in service.predict("churn", two_versions))
        suspension.resume(workspace, "churn")
        wait_until(lambda: service.runtime("churn").suspension is None, 1.0, "the resumption")
    finally:
        service.close()
    assert seen < 1.0


def test_a_check_that_finds_nothing_changed_reads_two_small_queries(
    workspace: Steward, two_versions: list[dict[str, Any]]
) -> None:
    """The whole runtime (system, contract, aliases, suspension) is read only when it changed."""
    service = Service(workspace, workspace.events, refresh_seconds=3600)  # checked by hand here
    statements: list[str] = []

    def note(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    engine = workspace.store.engine
    try:
        service.predict("churn", two_versions)
        event.listen(engine, "before_cursor_execute", note)
        assert service.refresh() == []
        unchanged = list(statements)
        workspace.move_alias("churn", "champion", 2)
        statements.clear()
        assert service.refresh() == ["churn"]
        changed = list(statements)
    finally:
        event.remove(engine, "before_cursor_execute", note)
        service.close()
    reads = [
        statement for statement in unchanged if statement.lstrip().upper().startswith("SELECT")
    ]
    assert len(reads) == 2, unchanged
    assert len([s for s in changed if s.lstrip().upper().startswith("SELECT")]) > 2
    assert champion_seen(service) == 2


def test_metrics_export_what_the_service_last_read(
    workspace: Steward, two_versions: list[dict[str, Any]]
) -> None:
    service = Service(workspace, workspace.events, refresh_seconds=0.05)
    service.start()
    metrics = Metrics()
    metrics.watch_serving(service)
    try:
        assert b"steward_serving_alias_version{" not in generate_latest(metrics.registry)
        service.predict("churn", two_versions)
        suspension.suspend(workspace, "churn", reason="drift")
        wait_until(lambda: service.runtime("churn").suspension is not None, 1.0, "the suspension")
        text = generate_latest(metrics.registry).decode()
    finally:
        service.close()
    assert 'steward_serving_alias_version{alias="champion",system="churn"} 1.0' in text
    assert 'steward_serving_suspended{system="churn"} 1.0' in text
    (age,) = [line for line in text.splitlines() if line.startswith("steward_serving_checked_")]
    assert 0 <= float(age.rsplit(" ", 1)[1]) < 1.0


def test_without_start_requests_check_the_store_themselves_and_no_thread_is_left(
    workspace: Steward, two_versions: list[dict[str, Any]]
) -> None:
    """Serving embedded in a program (no server lifespan) starts no thread, and still follows."""
    before = set(threading.enumerate())
    service = Service(workspace, workspace.events, refresh_seconds=0.2)
    try:
        assert {result.model_version for result in service.predict("churn", two_versions)} == {1}
        workspace.move_alias("churn", "champion", 2)
        time.sleep(0.25)  # older than refresh_seconds: the next request checks
        assert {result.model_version for result in service.predict("churn", two_versions)} == {2}
        assert not [t for t in set(threading.enumerate()) - before if t.name == "steward-refresh"]
    finally:
        service.close()


def test_the_refresh_comes_from_the_serving_refresh_ms_setting(workspace: Steward) -> None:
    assert Service(workspace, workspace.events).refresh_seconds == 0.25
    settings = dataclasses.replace(workspace.settings, serving_refresh_ms=40.0)
    tuned = Steward(settings)
    try:
        assert Service(tuned, tuned.events).refresh_seconds == 0.04
    finally:
        tuned.close()
