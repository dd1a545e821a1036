"""Model health on ``/metrics``: drift, data quality, performance, SLOs, alerts and suspension, as
stored, scraped from a real ``steward serve``; then the demo's own workspace scraped the same way.

Every expected value is read back from the store, never written down here: the test checks that
what Prometheus sees is what the monitors, the SLO evaluator and the alert lifecycle stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from steward import Steward
from steward.data.events import EventLog
from steward.delivery.suspension import resume, suspend
from steward.errors import InvalidInputError
from steward.loop.tick import tick
from steward.store import AlertRow, MonitorResultRow, SLOEvaluationRow, System
from steward.web.health_metrics import HEALTH_METRICS
from steward.web.metrics import Metrics
from tests.conftest import Server, demo_workspace

START = datetime(2026, 3, 2, tzinfo=UTC)
NOW = START + timedelta(days=7)
N_ROWS = 400
SLOW = {
    "name": "fast",
    "indicator": "latency",
    "objective": 0.99,
    "threshold": 100,
    "min_events": 5,
    "alerts": [{"long": "7d", "short": "1d", "burn_rate": 2, "severity": "page"}],
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by name and label set."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: Any) -> float:
    key = (name, frozenset((k, str(v)) for k, v in labels.items()))
    assert key in samples, f"no sample {name}{labels}"
    return samples[key]


def log_shifted_traffic(
    workspace: Steward, telco: tuple[pd.DataFrame, pd.Series], model: Any
) -> list[str]:
    """A week of slow predictions, every customer on fibre (drift), and their outcomes.
    Returns the prediction ids and entity keys it logged."""
    frame, target = telco
    rows = frame.sample(N_ROWS, random_state=5).assign(InternetService="Fiber optic")
    labels = target.loc[rows.index].to_numpy()
    features = rows.drop(columns=["customerID"])
    scores = model.predict_proba(features)[:, 1]
    records = features.to_dict(orient="records")
    keys = [str(key) for key in rows["customerID"]]
    step = timedelta(days=7) / N_ROWS
    with EventLog(workspace.settings.events_dir) as events:
        events.append(
            [
                {
                    "kind": "prediction",
                    "system": "churn",
                    "id": f"p{i}",
                    "event_time": START + step * i,
                    "entity_key": keys[i],
                    "model_version": 1,
                    "score": float(scores[i]),
                    "latency_ms": 500.0,  # every prediction misses the 100 ms SLO
                    "inputs": json.dumps(records[i], default=float),
                }
                for i in range(N_ROWS)
            ]
        )
        events.append(
            [
                {
                    "kind": "outcome",
                    "system": "churn",
                    "id": f"o{i}",
                    "prediction_id": f"p{i}",
                    "event_time": NOW - timedelta(hours=1),
                    "value": float(labels[i]),
                }
                for i in range(N_ROWS)
            ]
        )
        report = tick(workspace, events, now=NOW, force_monitors=True, notify_backoff=0.0)
    assert not report.systems[0].errors, report.systems[0].errors
    return [f"p{i}" for i in range(N_ROWS)] + keys


@pytest.fixture
def unhealthy(
    workspace: Steward, telco: tuple[pd.DataFrame, pd.Series], telco_model: Any
) -> list[str]:
    """The churn system after a week of drifted, slow traffic: monitors and SLO stored, alerts
    firing, automation suspended."""
    config = yaml.safe_load(workspace.settings.config_path.read_text())
    config["systems"][0]["slos"] = [SLOW]
    workspace.settings.config_path.write_text(yaml.safe_dump(config))
    workspace.apply()
    frame, target = telco
    workspace.register_model(
        telco_model, system="churn", data=frame.assign(Churn=target), metrics={"roc_auc": 0.99}
    )
    workspace.move_alias("churn", "champion", 1)
    logged = log_shifted_traffic(workspace, telco, telco_model)
    suspend(workspace, "churn", mode="review", reason="drift under investigation")
    return logged


@pytest.fixture
def served(
    workspace: Steward, unhealthy: list[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Server]:
    monkeypatch.setenv("STEWARD_LOOP_INTERVAL", "0")  # nothing new is stored while we look
    running = Server(workspace.settings.workspace, workspace.settings.database_url)
    running.start()
    yield running
    running.close()


def latest(workspace: Steward, monitor: str) -> MonitorResultRow:
    with workspace.store.read() as session:
        row = session.scalars(
            select(MonitorResultRow)
            .where(MonitorResultRow.monitor == monitor)
            .order_by(MonitorResultRow.id.desc())
        ).first()
    assert row is not None, f"no {monitor} result stored"
    return row


def check_monitors(samples: Samples, workspace: Steward) -> None:
    """The scrape's drift, data quality and performance gauges are the stored latest results."""
    drift = latest(workspace, "drift")
    assert drift.status == "breach" and "InternetService" in drift.details["alarmed_columns"]
    for entry in drift.details["results"]:
        labels = {"system": "churn", "column": entry["column"], "method": entry["method"]}
        assert value(samples, "steward_drift_statistic", **labels) == entry["statistic"]
        assert value(samples, "steward_drift_threshold", **labels) == entry["threshold"]
    for column in {entry["column"] for entry in drift.details["results"]}:
        alarmed = column in drift.details["alarmed_columns"]
        assert value(samples, "steward_drift_alarm", system="churn", column=column) == alarmed
    assert value(
        samples, "steward_monitor_status", system="churn", monitor="drift", status="breach"
    )
    assert value(
        samples, "steward_monitor_window_end_timestamp_seconds", system="churn", monitor="drift"
    ) == pytest.approx(drift.window_end.timestamp())

    quality = latest(workspace, "data_quality").details
    assert value(samples, "steward_data_quality_rows", system="churn") == quality["volume"]
    for column, rate in quality["null_rates"].items():
        assert value(samples, "steward_data_quality_null_ratio", system="churn", column=column) == (
            rate
        )

    performance = latest(workspace, "performance").details["metrics"]
    auc = next(m for m in performance if m["metric"] == "roc_auc" and m["status"] == "ok")
    labels = {"system": "churn", "model_version": auc["model_version"], "metric": "roc_auc"}
    for name, key in (("", "value"), ("_lower", "lower"), ("_upper", "upper")):
        assert value(samples, f"steward_performance{name}", **labels) == auc[key]
    estimated = latest(workspace, "estimated_performance").details
    for entry in estimated["metrics"]:
        labels = {"system": "churn", "model_version": 1, "metric": entry["metric"]}
        assert value(samples, "steward_estimated_performance", **labels) == entry["value"]


def check_slo_and_alerts(samples: Samples, workspace: Steward) -> None:
    """The scrape's SLO and alert gauges are the stored latest evaluation and the open alerts."""
    with workspace.store.read() as session:
        slo = session.scalars(select(SLOEvaluationRow).order_by(SLOEvaluationRow.id.desc())).first()
        open_alerts = session.scalars(select(AlertRow).where(AlertRow.state == "firing")).all()
    assert slo is not None and slo.budget_remaining is not None and slo.budget_remaining < 0
    assert value(samples, "steward_slo_budget_remaining_ratio", system="churn", slo="fast") == (
        slo.budget_remaining
    )
    for window, rate in slo.burn_rates.items():
        if rate is not None:
            labels = {"system": "churn", "slo": "fast", "window": window}
            assert value(samples, "steward_slo_burn_rate", **labels) == rate
    assert value(samples, "steward_slo_sli", system="churn", slo="fast", indicator="latency") == (
        slo.sli
    )

    assert any(alert.rule == "slo:fast" for alert in open_alerts)
    for severity in ("page", "ticket"):
        firing = sum(alert.severity == severity for alert in open_alerts)
        labels = {"system": "churn", "severity": severity, "state": "firing"}
        assert value(samples, "steward_alerts_open", **labels) == firing
    for alert in open_alerts:
        labels = {"system": "churn", "rule": alert.rule, "severity": alert.severity}
        assert value(samples, "steward_alert_open", **labels, state="firing") == 1


def test_a_scrape_shows_the_stored_drift_quality_performance_slo_alerts_and_suspension(
    workspace: Steward, served: Server
) -> None:
    response = httpx.get(f"{served.url}/metrics", timeout=30)
    assert response.status_code == 200
    samples = scrape(response.text)
    assert value(samples, "steward_health_up") == 1
    check_monitors(samples, workspace)
    check_slo_and_alerts(samples, workspace)
    assert value(samples, "steward_suspended", system="churn") == 1
    assert value(samples, "steward_alias_version", system="churn", alias="champion") == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_no_created_series_and_labels_stay_bounded_never_an_entity_key_or_prediction_id(
    workspace: Steward, served: Server, unhealthy: list[str]
) -> None:
    httpx.get(f"{served.url}/healthz", timeout=30)
    text = httpx.get(f"{served.url}/metrics", timeout=30).text
    assert "_created" not in text
    assert "steward_http_requests_total" in text and "steward_http_request_seconds_bucket" in text
    families = list(text_string_to_metric_families(text))
    health = [family for family in families if family.name in HEALTH_METRICS]
    assert {family.name for family in health} == set(HEALTH_METRICS)
    values = {v for family in health for sample in family.samples for v in sample.labels.values()}
    assert values.isdisjoint(unhealthy)
    for family in health:
        declared = set(HEALTH_METRICS[family.name][1])
        for sample in family.samples:
            assert set(sample.labels) == declared, (family.name, sample.labels)
    with workspace.store.read() as session:
        columns = len(latest(workspace, "data_quality").details["null_rates"])
        alerts = session.scalar(select(func.count()).select_from(AlertRow))
    # Per column, per drift method (at most five), per alert: not per row or per prediction.
    drift = next(f for f in health if f.name == "steward_drift_statistic")
    assert 0 < len(drift.samples) <= 5 * columns
    open_alert = next(f for f in health if f.name == "steward_alert_open")
    assert 0 < len(open_alert.samples) <= alerts


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_read_is_reused_for_ttl_seconds_then_taken_anew(
    workspace: Steward, unhealthy: list[str]
) -> None:
    def suspended(metrics: Metrics) -> float:
        samples = scrape(generate_latest(metrics.registry).decode())
        return value(samples, "steward_suspended", system="churn")

    cached, fresh = Metrics(workspace, health_ttl=3600), Metrics(workspace, health_ttl=0)
    assert suspended(cached) == suspended(fresh) == 1
    resume(workspace, "churn", reason="drift explained")
    assert suspended(cached) == 1  # within its ttl: the first read
    assert suspended(fresh) == 0


def test_an_unreachable_store_gives_health_up_0_not_a_failed_scrape(tmp_path: Path) -> None:
    # A PostgreSQL URL on a port nobody listens on: the database is down.
    steward = Steward.open(tmp_path, database_url="postgresql://steward@127.0.0.1:9/steward")
    metrics = Metrics(steward, health_ttl=0)
    metrics.predictions.labels("churn", "1").inc()
    samples = scrape(generate_latest(metrics.registry).decode())
    assert value(samples, "steward_health_up") == 0
    assert value(samples, "steward_predictions_total", system="churn", model_version=1) == 1
    assert not any(name.startswith("steward_drift") for name, _ in samples)


def test_ttl_must_be_a_number_of_seconds(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="ttl must be a number of seconds >= 0, got -1"):
        Metrics(Steward.open(tmp_path), health_ttl=-1)


def test_every_health_metric_is_documented() -> None:
    docs = (Path(__file__).parents[1] / "docs" / "metrics.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line for line in docs.splitlines() if line[:3] == "| `"}
    assert [name for name in HEALTH_METRICS if name not in rows] == []
    for name, (_, labels) in HEALTH_METRICS.items():
        assert all(f"`{label}`" in rows[name] for label in labels), (name, labels)


# --- the demo ------------------------------------------------------------------------------------


def test_after_the_demo_a_scrape_finds_its_drift_slo_and_alerts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace, database_url = demo_workspace(tmp_path)
    monkeypatch.setenv("STEWARD_LOOP_INTERVAL", "0")  # the story is told; nothing more to run
    running = Server(workspace, database_url)
    try:
        running.start()
        samples = scrape(httpx.get(f"{running.url}/metrics", timeout=30).text)
    finally:
        running.close()
    steward = Steward.open(workspace, database_url=database_url)
    try:
        drift = latest(steward, "drift")
        with steward.store.read() as session:
            slos = session.scalars(select(SLOEvaluationRow).order_by(SLOEvaluationRow.id)).all()
            alerts = session.scalars(select(AlertRow).where(AlertRow.state == "firing")).all()
            names = {row.id: row.name for row in session.scalars(select(System))}
    finally:
        steward.close()
    # The product launch moved InternetService: the newest drift result still alarms on it.
    assert "InternetService" in drift.details["alarmed_columns"]
    assert value(samples, "steward_drift_alarm", system="churn", column="InternetService") == 1
    for entry in drift.details["results"]:
        labels = {"system": "churn", "column": entry["column"], "method": entry["method"]}
        assert value(samples, "steward_drift_statistic", **labels) == entry["statistic"]
    newest = {(row.system_id, row.name): row for row in slos}
    assert {name for _, name in newest} >= {"latency", "realized-auc", "answer-cost"}
    for (system_id, name), row in newest.items():
        labels = {"system": names[system_id], "slo": name}
        if row.budget_remaining is not None:
            assert value(samples, "steward_slo_budget_remaining_ratio", **labels) == (
                row.budget_remaining
            )
        for window, rate in row.burn_rates.items():
            if rate is not None:
                assert value(samples, "steward_slo_burn_rate", **labels, window=window) == rate
    assert {alert.rule for alert in alerts} >= {"monitor:drift", "monitor:performance"}
    for system_id, system in names.items():
        for severity in ("page", "ticket"):
            count = sum(a.system_id == system_id and a.severity == severity for a in alerts)
            labels = {"system": system, "severity": severity, "state": "firing"}
            assert value(samples, "steward_alerts_open", **labels) == count
    assert value(samples, "steward_llm_calls", system="assistant", prompt="answer",
                 prompt_version=1, model="fake-model") > 0  # fmt: skip
