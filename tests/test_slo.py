"""SLOs on a fake clock: burn rates from a real event log and from stored monitor results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sqlalchemy import select

from steward import Steward
from steward.data.events import EventLog
from steward.errors import ConfigError, NotFoundError
from steward.model.registry import find_system
from steward.monitoring.slo import alert_pairs, evaluate, evaluate_all, evaluation_history
from steward.store import MonitorResultRow, SLOEvaluationRow
from steward.workspace.config import SLOConfig
from tests.conftest import CONFIG

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def declare_slos(steward: Steward, slos: list[dict[str, Any]]) -> None:
    """Add ``slos`` to the churn system of ``steward.yaml`` and apply it."""
    config = yaml.safe_load(steward.settings.config_path.read_text())
    config["systems"][0]["slos"] = slos
    steward.settings.config_path.write_text(yaml.safe_dump(config))
    steward.apply()


def log_latencies(
    events: EventLog, start: datetime, step: timedelta, latencies: np.ndarray, system: str = "churn"
) -> None:
    """One prediction per ``step`` from ``start`` with the given latencies, then into Parquet."""
    batch = [
        {
            "kind": "prediction",
            "system": system,
            "id": f"p{index}",
            "event_time": start + index * step,
            "latency_ms": float(latency),
            "score": 0.5,
        }
        for index, latency in enumerate(latencies)
    ]
    for offset in range(0, len(batch), 20_000):
        events.append(batch[offset : offset + 20_000])
    events.flush()


def test_default_alert_windows_scale_with_the_slo_window() -> None:
    thirty = alert_pairs(SLOConfig(name="a", indicator="latency", objective=0.99, threshold=1))
    assert [(p.long, p.short, p.burn_rate, p.severity) for p in thirty] == [
        ("1h", "5m", 14.4, "page"),
        ("6h", "30m", 6.0, "page"),
        ("3d", "6h", 1.0, "ticket"),
    ]
    week = alert_pairs(
        SLOConfig(name="a", indicator="latency", objective=0.99, threshold=1, window="7d")
    )
    # 1h * 7/30 = 14 min; 5m * 7/30 = 70 s, rounded to whole minutes.
    assert [(p.long, p.short) for p in week] == [("14m", "1m"), ("84m", "7m"), ("1008m", "84m")]


def test_constant_14x_burn_pages_within_an_hour_and_one_step(
    workspace: Steward, tmp_path: Path
) -> None:
    # Budget 2.5%; 9 bad in every 25 consecutive predictions is 36% bad: a burn of exactly 14.4.
    declare_slos(
        workspace,
        [{"name": "fast", "indicator": "latency", "objective": 0.975, "threshold": 100,
          "min_events": 20}],
    )  # fmt: skip
    step = timedelta(seconds=12)  # 25 predictions per 5 minutes
    start = T0 - timedelta(hours=3)
    n_before, n_after = 3 * 300, 2 * 300
    pattern = np.where(np.arange(n_after) % 25 < 9, 500.0, 10.0)
    latencies = np.concatenate([np.full(n_before, 10.0), pattern])
    evaluation_step = timedelta(minutes=5)
    with EventLog(tmp_path / "events", fsync=False) as events:
        log_latencies(events, start, step, latencies)
        first_page = None
        at = T0
        while at <= T0 + timedelta(hours=2) and first_page is None:
            status = evaluate(workspace, events, "churn", "fast", now=at)
            if any(alert.severity == "page" for alert in status.alerting):
                first_page = at
            at += evaluation_step
        assert first_page is not None, "a 14.4x burn never paged"
        # Not before the 1h window holds an hour of burn, and no later than one step after.
        assert T0 + timedelta(minutes=55) < first_page <= T0 + timedelta(hours=1) + evaluation_step
        status = evaluate(workspace, events, "churn", "fast", now=first_page, store=False)
        frame = events.scan("prediction", "churn").to_pandas()
    fired = status.alerting[0]
    assert (fired.long, fired.short, fired.severity) == ("1h", "5m", "page")
    # The burn rates agree with a direct count over the raw rows.
    for label, length in (("1h", timedelta(hours=1)), ("5m", timedelta(minutes=5))):
        inside = frame[
            (frame["event_time"] >= pd.Timestamp(first_page - length))
            & (frame["event_time"] < pd.Timestamp(first_page))
        ]
        expected = (inside["latency_ms"] > 100).mean() / 0.025
        assert status.burn_rates[label] == pytest.approx(expected)
        assert expected == pytest.approx(14.4)
    with workspace.store.read() as session:
        stored = session.scalars(
            select(SLOEvaluationRow)
            .where(SLOEvaluationRow.name == "fast")
            .order_by(SLOEvaluationRow.id)  # PostgreSQL returns rows in no set order without it
        ).all()
    assert any(row.status == "breach" for row in stored)
    assert stored[-1].details["alerting"][0]["burn_rate"] == 14.4


@pytest.mark.slow
def test_half_burn_stays_silent_for_thirty_days(tmp_path: Path) -> None:
    # Reads only the event log (store=False), so one metadata store is enough: SQLite.
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "steward.yaml").write_text(CONFIG)
    workspace = Steward.open(tmp_path / "ws", user="tester")
    workspace.init()
    declare_slos(
        workspace,
        [{"name": "fast", "indicator": "latency", "objective": 0.975, "threshold": 100,
          "min_events": 5}],
    )  # fmt: skip
    # One prediction a minute for 33 days; 1 in 80 slow is 1.25% bad: half the 2.5% budget.
    minutes = 33 * 24 * 60
    latencies = np.where(np.arange(minutes) % 80 == 79, 500.0, 10.0)
    start = T0 - timedelta(days=3)
    with EventLog(tmp_path / "events", fsync=False) as events:
        log_latencies(events, start, timedelta(minutes=1), latencies)
        statuses = [
            evaluate(
                workspace, events, "churn", "fast", now=T0 + timedelta(hours=hours), store=False
            )
            for hours in range(0, 30 * 24 + 1, 6)
        ]
    assert all(not status.alerting for status in statuses)
    # The long windows, which gate every alert, stay well below their thresholds throughout.
    for label, threshold in (("1h", 14.4), ("6h", 6.0), ("3d", 1.0)):
        worst = max(float(status.burn_rates[label] or 0.0) for status in statuses)
        assert 0.4 < worst < threshold
    last = statuses[-1]
    window = latencies[-30 * 24 * 60 :]
    bad_share = float((window > 100).mean())
    assert last.n_events == 30 * 24 * 60
    assert last.sli == pytest.approx(1 - bad_share)
    assert last.budget_remaining == pytest.approx(1 - bad_share / 0.025)
    assert last.burn_rates["30d"] == pytest.approx(0.5, abs=0.01)
    workspace.close()


def test_too_few_events_never_alert(workspace: Steward, tmp_path: Path) -> None:
    declare_slos(
        workspace,
        [{"name": "fast", "indicator": "latency", "objective": 0.99, "threshold": 100,
          "min_events": 50}],
    )  # fmt: skip
    with EventLog(tmp_path / "events", fsync=False) as events:
        # 40 predictions in the last 40 minutes, every one slow: a burn of 100, but too few.
        log_latencies(events, T0 - timedelta(minutes=40), timedelta(minutes=1), np.full(40, 900.0))
        status = evaluate(workspace, events, "churn", "fast", now=T0)
    assert status.alerting == []
    assert status.status == "not_enough_data"
    assert "not enough events" in status.reason and "40 in 1h" in status.reason
    assert status.burn_rates["1h"] == pytest.approx(100.0)


def test_violation_rate_counts_predictions_that_broke_the_contract(
    workspace: Steward, tmp_path: Path
) -> None:
    declare_slos(
        workspace,
        [{"name": "clean", "indicator": "violation_rate", "objective": 0.9, "min_events": 10}],
    )
    rows = [
        {
            "kind": "prediction",
            "system": "churn",
            "id": f"v{index}",
            "event_time": T0 - timedelta(minutes=30) + timedelta(seconds=index),
            "violations": '[{"column": "tenure"}]' if index % 2 else None,
        }
        for index in range(100)
    ]
    with EventLog(tmp_path / "events", fsync=False) as events:
        events.append(rows)
        status = evaluate(workspace, events, "churn", "clean", now=T0)
    assert status.sli == pytest.approx(0.5)
    assert status.burn_rates["1h"] == pytest.approx(0.5 / 0.1)
    # A burn of 5 reaches the ticket pair (1x over 3d and 6h), not the pages (14.4x, 6x).
    assert [(a.long, a.short, a.severity) for a in status.alerting] == [("3d", "6h", "ticket")]


def store_result(
    steward: Steward, monitor: str, at: datetime, status: str, details: dict[str, Any]
) -> None:
    with steward.store.write() as session:
        session.add(
            MonitorResultRow(
                system_id=find_system(session, "churn").id,
                monitor=monitor,
                window_start=at - timedelta(days=7),
                window_end=at,
                status=status,
                summary="",
                details=details,
                created_at=at,
            )
        )


def auc_details(*values: float) -> dict[str, Any]:
    return {
        "metrics": [
            {"metric": "roc_auc", "value": value, "lower": value - 0.02, "upper": value + 0.02,
             "model_version": version, "status": "ok"}
            for version, value in enumerate(values, start=1)
        ]
    }  # fmt: skip


def test_label_based_slo_counts_results_by_when_outcomes_arrived(workspace: Steward) -> None:
    declare_slos(
        workspace,
        [{"name": "auc", "indicator": "roc_auc", "objective": 0.5, "threshold": 0.75,
          "min_events": 1, "window": "30d",
          "alerts": [{"long": "6h", "short": "1h", "burn_rate": 1.2, "severity": "page"}]}],
    )  # fmt: skip
    for hours, values in ((5, (0.80,)), (4, (0.81,)), (3, (0.70,)), (2, (0.79, 0.72))):
        store_result(workspace, "performance", T0 - timedelta(hours=hours, minutes=30), "ok",
                     auc_details(*values))  # fmt: skip
    store_result(workspace, "performance", T0 - timedelta(minutes=20), "ok", auc_details(0.6))
    # A window with no usable AUC is no event at all.
    store_result(workspace, "performance", T0 - timedelta(minutes=10), "not_enough_data", {})
    with EventLog(workspace.settings.events_dir) as events:
        status = evaluate(workspace, events, "churn", "auc", now=T0)
    # Five windows hold an AUC; the one with two versions is bad because v2 is below 0.75.
    assert status.n_events == 5
    assert status.sli == pytest.approx(2 / 5)
    assert status.burn_rates["6h"] == pytest.approx((3 / 5) / 0.5)
    assert status.burn_rates["1h"] == pytest.approx(1 / 0.5)
    assert [(a.long, a.short) for a in status.alerting] == [("6h", "1h")]


def test_drift_estimated_and_uplift_indicators(workspace: Steward) -> None:
    declare_slos(
        workspace,
        [
            {"name": "stable", "indicator": "drift", "objective": 0.75, "min_events": 1},
            {"name": "estimate", "indicator": "estimated_roc_auc", "objective": 0.5,
             "threshold": 0.7, "min_events": 1},
            {"name": "lift", "indicator": "uplift", "objective": 0.5, "threshold": -0.02,
             "min_events": 1},
        ],
    )  # fmt: skip
    hour = timedelta(hours=1)
    for index, status in enumerate(["ok", "breach", "ok", "not_enough_data", "ok"]):
        store_result(workspace, "drift", T0 - (index + 1) * hour, status, {})
    store_result(workspace, "estimated_performance", T0 - hour, "ok", {"estimated_roc_auc": 0.65})
    store_result(workspace, "estimated_performance", T0 - 2 * hour, "ok", {})
    store_result(workspace, "uplift", T0 - hour, "ok", {"enough_data": True, "uplift": -0.05})
    store_result(workspace, "uplift", T0 - 2 * hour, "ok", {"enough_data": True, "uplift": 0.01})
    store_result(workspace, "uplift", T0 - 3 * hour, "not_enough_data", {"enough_data": False})
    with EventLog(workspace.settings.events_dir) as events:
        statuses = {s.name: s for s in evaluate_all(workspace, events, "churn", T0, store=False)}
    assert (statuses["stable"].n_events, statuses["stable"].sli) == (4, pytest.approx(0.75))
    assert (statuses["estimate"].n_events, statuses["estimate"].sli) == (1, 0.0)
    # Churn: the action must lower the outcome by 2 points; -5 does, +1 does not.
    assert (statuses["lift"].n_events, statuses["lift"].sli) == (2, pytest.approx(0.5))


def test_unmeasurable_indicators_say_why(workspace: Steward) -> None:
    declare_slos(
        workspace,
        [
            {"name": "errors", "indicator": "error_rate", "objective": 0.99},
            {"name": "spend", "indicator": "cost", "objective": 0.99, "threshold": 1},
            {"name": "auc", "indicator": "roc_auc", "objective": 0.9},
        ],
    )
    with EventLog(workspace.settings.events_dir) as events:
        with pytest.raises(ConfigError, match="'error_rate' is not supported yet: failed requests"):
            evaluate(workspace, events, "churn", "errors", now=T0)
        with pytest.raises(ConfigError, match="needs a threshold"):
            evaluate(workspace, events, "churn", "auc", now=T0)
        with pytest.raises(NotFoundError, match="declares no SLO 'nope'"):
            evaluate(workspace, events, "churn", "nope", now=T0)
        statuses = evaluate_all(workspace, events, "churn", T0)
    assert [(s.name, s.status) for s in statuses] == [
        ("errors", "error"),
        ("spend", "error"),
        ("auc", "error"),
    ]
    assert "no cost is logged" in statuses[1].reason


def test_window_results_count_at_the_loops_time_not_the_wall_clocks(workspace: Steward) -> None:
    # A result the loop computed for T0 (a fake clock, or the demo's simulated week) was written
    # now by the wall clock; the SLO evaluated at T0 counts it all the same.
    declare_slos(
        workspace,
        [{"name": "auc", "indicator": "roc_auc", "objective": 0.5, "threshold": 0.75,
          "min_events": 1, "window": "30d"}],
    )  # fmt: skip
    with workspace.store.write() as session:
        session.add(
            MonitorResultRow(
                system_id=find_system(session, "churn").id,
                monitor="performance",
                window_start=T0 - timedelta(days=7),
                window_end=T0 - timedelta(minutes=20),
                status="ok",
                summary="",
                details=auc_details(0.6),
                created_at=datetime.now(UTC),
            )
        )
    with EventLog(workspace.settings.events_dir) as events:
        status = evaluate(workspace, events, "churn", "auc", now=T0)
    assert status.n_events == 1 and status.sli == 0.0


def test_stored_evaluations_have_their_own_table_and_feed_the_system_page(
    workspace: Steward,
) -> None:
    from steward.loop.tick import monitors_due
    from steward.web.dashboard.system_page import system_context

    declare_slos(
        workspace,
        [{"name": "fast", "indicator": "latency", "objective": 0.9, "threshold": 100,
          "min_events": 1}],
    )  # fmt: skip
    with EventLog(workspace.settings.events_dir, fsync=False) as events:
        # Every fourth prediction is slow: a quarter bad against a tenth of budget.
        log_latencies(
            events, T0 - timedelta(hours=2), timedelta(minutes=1), np.tile([500, 1, 1, 1], 30)
        )
        first = evaluate(workspace, events, "churn", "fast", now=T0 - timedelta(minutes=1))
        last = evaluate(workspace, events, "churn", "fast", now=T0)
    with workspace.store.read() as session:
        stored = session.scalars(select(SLOEvaluationRow).order_by(SLOEvaluationRow.id)).all()
        results = session.scalars(select(MonitorResultRow)).all()
        context = system_context(workspace, None, session, "churn", "2026-03-01..2026-03-02")
    assert results == []  # an evaluation is not a monitor result
    assert monitors_due(workspace, "churn", timedelta(hours=1), T0)
    assert [(row.name, row.indicator, row.window_end) for row in stored] == [
        ("fast", "latency", first.at),
        ("fast", "latency", last.at),
    ]
    row = stored[-1]
    assert row.status == ("breach" if last.status == "alerting" else last.status)
    assert (row.sli, row.budget_remaining) == (last.sli, last.budget_remaining)
    assert row.burn_rates == last.burn_rates and row.details["status"] == last.status
    assert row.window_start == T0 - timedelta(days=30)
    # The system page: the newest evaluation per SLO, and the range ends at it.
    assert list(context["slos"]) == ["slo:fast"] and context["slos"]["slo:fast"].id == row.id
    assert context["end"] == T0
    assert "fast: share within threshold" in context["latency"].json()
    history = evaluation_history(workspace, "churn")
    assert [(r.monitor, r.window_end, r.status) for r in history] == [
        ("slo:fast", last.at, row.status),
        ("slo:fast", first.at, stored[0].status),
    ]
