"""The loop: a tick on a fake clock, `steward monitor run`, the scheduler, and a real server."""

from __future__ import annotations

import json
import logging
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import select

from steward import Steward
from steward.cli.main import cli
from steward.data.events import EventLog
from steward.demo import train_churn_model
from steward.loop.notify import list_notifications
from steward.loop.scheduler import Scheduler
from steward.loop.tick import monitors_due, tick
from steward.store import ActionRow, AuditRow
from tests.conftest import Server

T0 = datetime(2026, 3, 2, tzinfo=UTC)
SLOW = {
    "name": "fast",
    "indicator": "latency",
    "objective": 0.99,
    "threshold": 100,
    "min_events": 5,
}


def declare(steward: Steward, **sections: Any) -> None:
    config = yaml.safe_load(steward.settings.config_path.read_text())
    config["systems"][0].update(sections)
    steward.settings.config_path.write_text(yaml.safe_dump(config))
    steward.apply()


def log_slow(events: EventLog, end: datetime, n: int = 20, latency: float = 500.0) -> None:
    events.append(
        [
            {
                "kind": "prediction",
                "system": "churn",
                "id": f"slow-{end.isoformat()}-{index}",
                "event_time": end - timedelta(seconds=30 * (index + 1)),
                "latency_ms": latency,
                "score": 0.4,
            }
            for index in range(n)
        ]
    )


def test_a_tick_fires_notifies_plays_and_later_resolves(
    workspace: Steward, telco_model: object, telco: Any, tmp_path: Path
) -> None:
    declare(workspace, slos=[SLOW], playbooks=[{"when": "slo:*", "do": ["rollback"]}])
    workspace.register_model(telco_model, system="churn")
    workspace.register_model(train_churn_model(*telco, C=0.1), system="churn")
    workspace.move_alias("churn", "champion", 1)
    workspace.move_alias("churn", "champion", 2)
    with EventLog(tmp_path / "events", fsync=False) as events:
        log_slow(events, T0)
        first = tick(workspace, events, now=T0, notify_backoff=0.0)
        assert first.systems[0].monitors_ran and first.breach
        assert [(a.rule, a.severity) for a in first.fired] == [("slo:fast", "page")]
        actions = first.systems[0].actions
        assert [(action.kind, action.status) for action in actions] == [("rollback", "done")]
        assert workspace.version("churn", "champion").version == 1
        second = tick(workspace, events, now=T0 + timedelta(minutes=5), notify_backoff=0.0)
        assert not second.systems[0].monitors_ran  # monitors.every is 1h
        assert second.fired == [] and second.systems[0].still_firing[0].checks == 2
        # Two hours on, the 6h window still burns (the 3d/6h ticket pair fires): still open.
        third = tick(workspace, events, now=T0 + timedelta(hours=2), notify_backoff=0.0)
        assert third.resolved == [] and third.systems[0].still_firing
        # Seven hours on, every short window is empty: no pair fires, the alert resolves.
        third = tick(workspace, events, now=T0 + timedelta(hours=7), notify_backoff=0.0)
    assert third.systems[0].monitors_ran
    assert [a.id for a in third.resolved] == [first.fired[0].id]
    assert third.resolved[0].resolved_by == "steward"
    sent = list_notifications(workspace, alert_ids=[first.fired[0].id])
    assert sorted((n.channel, n.event, n.status) for n in sent) == [
        ("log", "fired", "delivered"),
        ("log", "resolved", "delivered"),
    ]
    with workspace.store.read() as session:
        stored = session.scalars(select(ActionRow)).all()
    assert [(row.kind, row.alert_id) for row in stored] == [("rollback", first.fired[0].id)]


def test_monitors_are_due_once_every_period(workspace: Steward, tmp_path: Path) -> None:
    declare(workspace, monitors={"window": "1d", "every": "30m"})
    with EventLog(tmp_path / "events", fsync=False) as events:
        assert monitors_due(workspace, "churn", timedelta(minutes=30), T0)
        tick(workspace, events, now=T0)
        assert not monitors_due(
            workspace, "churn", timedelta(minutes=30), T0 + timedelta(minutes=29)
        )
        assert monitors_due(workspace, "churn", timedelta(minutes=30), T0 + timedelta(minutes=30))
        report = tick(workspace, events, now=T0 + timedelta(minutes=31))
    assert report.systems[0].monitors_ran
    results = report.systems[0].monitor_results
    assert {r.window_end - r.window_start for r in results} == {timedelta(days=1)}


def test_monitor_run_runs_a_tick_and_exits_1_on_an_slo_breach(workspace: Steward) -> None:
    declare(workspace, slos=[SLOW])
    with EventLog(workspace.settings.events_dir, fsync=False) as events:
        log_slow(events, T0)
    base = ["--workspace", str(workspace.settings.workspace)]
    base += ["--database-url", workspace.settings.database_url]
    runner = CliRunner()
    result = runner.invoke(cli, [*base, "monitor", "run", "--at", T0.isoformat()])
    assert result.exit_code == 1, result.output
    assert "slo:fast" in result.output and "fired" in result.output
    assert "data_quality" in result.output  # the monitors still ran and printed as before
    as_json = runner.invoke(
        cli, [*base, "monitor", "run", "--at", T0.isoformat(), "--format", "json"]
    )
    rows = {row["monitor"]: row for row in json.loads(as_json.output)}
    assert rows["slo:fast"]["status"] == "breach"
    later = (T0 + timedelta(hours=7)).isoformat()
    quiet = runner.invoke(cli, [*base, "monitor", "run", "--at", later])
    assert quiet.exit_code == 0, quiet.output
    assert "resolved" in quiet.output
    status = runner.invoke(cli, [*base, "slo", "status", "churn", "--at", T0.isoformat()])
    assert status.exit_code == 0 and "alerting (page)" in status.output


def test_an_unreachable_store_never_stops_the_scheduler(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A metadata store nobody listens on: nobody can take the loop lock, so no tick runs, and the
    # scheduler asks again every interval, saying why, without ever raising.
    steward = Steward.open(tmp_path, database_url="postgresql://nobody@127.0.0.1:1/none")
    with EventLog(tmp_path / "events") as events, caplog.at_level(logging.WARNING):
        scheduler = Scheduler(steward, events, interval=0.05)
        scheduler.start()
        deadline = time.monotonic() + 30
        while scheduler.rounds < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert scheduler.role == "standby"
        scheduler.stop()
    assert scheduler.rounds >= 3 and scheduler.ticks == 0
    assert "could not ask for the loop lock" in caplog.text
    assert "cannot reach the metadata store" in caplog.text


def wait_for(check: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError("timed out waiting")


@pytest.mark.slow
def test_served_loop_raises_and_resolves_an_alert_over_http(
    server: Server, workspace: Steward, telco: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Threshold 0 ms: every served prediction is too slow, a burn of 100.
    declare(workspace, slos=[{**SLOW, "threshold": 0}])
    monkeypatch.setenv("STEWARD_LOOP_INTERVAL", "1")
    server.start()
    frame, _ = telco
    records = json.loads(frame.head(10).to_json(orient="records"))
    served = httpx.post(
        f"{server.url}/v1/systems/churn/predict", json={"records": records}, timeout=60
    )
    assert served.status_code == 200, served.text

    def firing() -> list[dict[str, Any]]:
        answer = httpx.get(f"{server.url}/v1/alerts", params={"state": "firing"}, timeout=10)
        return [a for a in answer.json()["alerts"] if a["rule"] == "slo:fast"]

    [alert] = wait_for(firing)
    assert alert["severity"] == "page" and alert["system"] == "churn"
    slos = httpx.get(f"{server.url}/v1/systems/churn/slos", timeout=30).json()["slos"]
    assert slos[0]["status"] == "alerting"
    # The fix: a realistic threshold. The next tick finds the SLO met and resolves the alert.
    declare(workspace, slos=[{**SLOW, "threshold": 1_000_000}])

    def resolved() -> list[dict[str, Any]]:
        # The tick resolves the alert, then notifies: wait until the notice is recorded too.
        answer = httpx.get(f"{server.url}/v1/alerts", params={"state": "resolved"}, timeout=10)
        return [
            a
            for a in answer.json()["alerts"]
            if a["id"] == alert["id"] and len(a["notifications"]) == 2
        ]

    [done] = wait_for(resolved)
    assert done["resolved_by"] == "steward"
    assert [n["event"] for n in done["notifications"]] == ["resolved", "fired"]
    server.stop()  # the loop thread stops with the server, within Server.stop's 30 s
    assert server.process is not None
    # uvicorn shuts down gracefully, then re-raises SIGTERM.
    assert server.process.returncode in (0, -signal.SIGTERM)
    assert "Traceback" not in server.log.read_text()


@pytest.mark.slow
def test_served_loop_rolls_back_suspends_and_hands_decisions_to_a_person(
    server: Server, workspace: Steward, telco: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Breach -> alert -> rollback -> suspension -> review -> resume, over a real server, with the
    store and the recorded history checked after each step."""
    frame, target = telco
    v2 = workspace.register_model(train_churn_model(frame, target, C=0.05), system="churn").version
    workspace.move_alias("churn", "champion", v2.version, reason="v2 release")
    declare(
        workspace,
        slos=[{**SLOW, "threshold": 0}],  # every served prediction is too slow: a breach
        playbooks=[{"when": "slo:fast", "do": ["notify", "rollback", "suspend"]}],
    )
    monkeypatch.setenv("STEWARD_LOOP_INTERVAL", "1")
    server.start()
    records = json.loads(frame.head(40).to_json(orient="records"))
    predict = f"{server.url}/v1/systems/churn/predict"
    assert httpx.post(predict, json={"records": records}, timeout=60).status_code == 200

    # Breach and alert, then the playbook's steps, each recorded with why.
    def acted() -> list[ActionRow]:
        with workspace.store.read() as session:
            rows = session.scalars(select(ActionRow).order_by(ActionRow.id)).all()
        return list(rows) if {row.kind for row in rows} >= {"rollback", "suspend"} else []

    actions = wait_for(acted)
    assert [(a.kind, a.status) for a in actions] == [
        ("notify", "done"),
        ("rollback", "done"),
        ("suspend", "done"),
    ]
    assert all("slo:fast" in action.reason or action.alert_id for action in actions)
    assert workspace.version("churn", "champion").version == 1  # back to the last known good
    last = workspace.history("churn", "champion")[-1]
    assert (last.from_version, last.to_version) == (v2.version, 1)
    state = httpx.get(f"{server.url}/v1/systems/churn/suspension", timeout=10).json()
    assert state["suspended"] and state["suspension"]["mode"] == "review"

    # Suspended: every decision not held out goes to a person, within the runtime's refresh.
    def all_to_review() -> list[dict[str, Any]]:
        answer = httpx.post(predict, json={"records": records}, timeout=60).json()
        served = [p for p in answer["predictions"] if not p["holdout"]]
        return answer["predictions"] if all(p["decision"] == "review" for p in served) else []

    served = wait_for(all_to_review, timeout=30)
    assert all(p["model_version"] == 1 and p["suspended"] for p in served if not p["holdout"])
    pending = httpx.get(f"{server.url}/v1/systems/churn/reviews", timeout=30).json()["reviews"]
    assert len(pending) >= len([p for p in served if not p["holdout"]])
    approve, override = pending[0]["id"], pending[1]["id"]
    reviews = f"{server.url}/v1/systems/churn/reviews"
    assert httpx.post(f"{reviews}/{approve}", json={}, timeout=30).status_code == 200
    other = "none" if pending[1]["intended_action"] != "none" else "contact"
    answer = httpx.post(f"{reviews}/{override}", json={"action": other, "note": "VIP"}, timeout=30)
    assert answer.json()["overridden"], answer.text
    assert answer.status_code == 200, answer.text
    again = httpx.post(f"{reviews}/{approve}", json={}, timeout=30)
    assert again.status_code == 409 and again.headers["content-type"].startswith(
        "application/problem+json"
    )
    left = httpx.get(reviews, timeout=30).json()["reviews"]
    assert {approve, override}.isdisjoint({item["id"] for item in left})

    # Resume: decisions are the policy's again.
    resumed = httpx.post(f"{server.url}/v1/systems/churn:resume", json={}, timeout=30)
    assert resumed.status_code == 200 and not resumed.json()["suspended"]

    def decided_by_policy() -> list[dict[str, Any]]:
        answer = httpx.post(predict, json={"records": records}, timeout=60).json()
        return [] if any(p["suspended"] for p in answer["predictions"]) else answer["predictions"]

    assert wait_for(decided_by_policy, timeout=30)
    server.stop()
    audited = [entry.action for entry in audit_entries(workspace)]
    for action in ("playbook.rollback", "playbook.suspend", "system.resume", "review.override"):
        assert action in audited, audited
    assert workspace.verify_audit().ok
    assert "Traceback" not in server.log.read_text()


def audit_entries(steward: Steward) -> list[AuditRow]:
    with steward.store.read() as session:
        return list(session.scalars(select(AuditRow).order_by(AuditRow.id)))
