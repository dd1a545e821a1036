"""Alerts: one per breach, their lifecycle, the audit trail, the CLI and the HTTP API."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from steward import Steward
from steward.cli.main import cli
from steward.errors import ConflictError, InvalidInputError, NotFoundError
from steward.governance.access import Role, add_identity, create_token
from steward.loop.alerts import (
    Breach,
    acknowledge,
    get_alert,
    list_alerts,
    resolve,
    surface_of,
    sync_alerts,
)
from steward.store import AuditRow
from steward.web import create_app

T0 = datetime(2026, 3, 2, tzinfo=UTC)
PAGE = Breach("slo:fast", "page", "burning 15x over 1h and 5m")
DRIFT = Breach("monitor:drift", "ticket", "drift in tenure")


def test_a_breach_that_persists_is_one_alert_that_resolves_when_it_stops(
    workspace: Steward,
) -> None:
    first = sync_alerts(workspace, "churn", [PAGE, DRIFT], T0)
    assert sorted(alert.rule for alert in first.fired) == ["monitor:drift", "slo:fast"]
    assert first.still_firing == [] and first.resolved == []
    later = T0 + timedelta(minutes=5)
    second = sync_alerts(workspace, "churn", [PAGE, DRIFT], later)
    assert second.fired == []
    assert {a.id for a in second.still_firing} == {a.id for a in first.fired}
    assert all(a.checks == 2 and a.last_seen_at == later for a in second.still_firing)
    # drift was not checked this time (monitors not due): its alert stays open.
    third = sync_alerts(workspace, "churn", [], later, checked=["slo:fast"])
    assert [alert.rule for alert in third.resolved] == ["slo:fast"]
    resolved = get_alert(workspace, third.resolved[0].id)
    assert (resolved.state, resolved.resolved_by) == ("resolved", "steward")
    assert [a.rule for a in list_alerts(workspace, "churn", "open")] == ["monitor:drift"]
    # A new breach of the same rule after it resolved is a new alert.
    fourth = sync_alerts(workspace, "churn", [PAGE], later + timedelta(hours=1))
    assert [a.rule for a in fourth.fired] == ["slo:fast"]
    assert fourth.fired[0].id != third.resolved[0].id
    # Without `checked`, every rule counts as checked: drift, not breaching, resolves now.
    assert [a.rule for a in fourth.resolved] == ["monitor:drift"]
    with workspace.store.read() as session:
        actions = [row.action for row in session.scalars(select(AuditRow).order_by(AuditRow.id))]
    assert actions.count("alert.fire") == 3 and actions.count("alert.resolve") == 2


def test_group_key_names_system_and_surface(workspace: Steward) -> None:
    p99 = Breach("slo:p99", "page", "slow", surface=surface_of("latency"))
    fired = sync_alerts(workspace, "churn", [PAGE, DRIFT, p99], T0)
    assert surface_of("latency") == "serving" and surface_of("monitor:uplift") == "business"
    by_rule = {alert.rule: alert.group_key for alert in fired.fired}
    assert by_rule == {
        "slo:fast": "churn/model",
        "monitor:drift": "churn/model",
        "slo:p99": "churn/serving",
    }
    serving = sync_alerts(workspace, "churn", [Breach("monitor:data_quality", "ticket", "x")], T0)
    assert serving.fired[0].group_key == "churn/serving"


def test_people_acknowledge_and_resolve_once(workspace: Steward) -> None:
    alert = sync_alerts(workspace, "churn", [PAGE], T0).fired[0]
    acknowledged = acknowledge(workspace, alert.id, "ana")
    assert (acknowledged.state, acknowledged.acknowledged_by) == ("acknowledged", "ana")
    with pytest.raises(ConflictError, match="already acknowledged by ana"):
        acknowledge(workspace, alert.id, "bo")
    # Still breaching: the acknowledged alert is updated, not duplicated.
    again = sync_alerts(workspace, "churn", [PAGE], T0 + timedelta(minutes=5))
    assert again.fired == [] and again.still_firing[0].state == "acknowledged"
    closed = resolve(workspace, alert.id, "ana", "rolled back by hand")
    assert closed.state == "resolved" and closed.details["resolution_note"] == "rolled back by hand"
    with pytest.raises(ConflictError, match=f"alert {alert.id} .* already resolved by ana"):
        resolve(workspace, alert.id, "ana")
    with pytest.raises(ConflictError, match="nothing left to acknowledge"):
        acknowledge(workspace, alert.id, "ana")
    with pytest.raises(NotFoundError, match="no alert with id 999"):
        acknowledge(workspace, 999, "ana")
    with pytest.raises(InvalidInputError, match="'sleeping' is not one of"):
        list_alerts(workspace, state="sleeping")


def test_alerts_cli_lists_acknowledges_and_resolves(workspace: Steward) -> None:
    alert = sync_alerts(workspace, "churn", [PAGE], T0).fired[0]
    root = str(workspace.settings.workspace)
    base = ["--workspace", root, "--database-url", workspace.settings.database_url]
    runner = CliRunner()
    listed = runner.invoke(cli, [*base, "alerts", "list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [(row["id"], row["rule"], row["state"]) for row in rows] == [
        (alert.id, "slo:fast", "firing")
    ]
    acked = runner.invoke(cli, [*base, "--user", "ana", "alerts", "ack", str(alert.id)])
    assert acked.exit_code == 0 and f"acknowledged alert {alert.id}" in acked.output
    text = runner.invoke(cli, [*base, "alerts", "list", "--state", "acknowledged"])
    assert "slo:fast" in text.output and "acknowledged" in text.output
    done = runner.invoke(cli, [*base, "alerts", "resolve", str(alert.id), "--note", "fixed"])
    assert done.exit_code == 0, done.output
    twice = runner.invoke(cli, [*base, "alerts", "resolve", str(alert.id)])
    assert twice.exit_code == 1 and "already resolved" in twice.output


def call(app: Any, method: str, url: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await client.request(method, url, **kwargs)

    return asyncio.run(go())


def test_alerts_over_http_with_problem_json_errors(workspace: Steward) -> None:
    alert = sync_alerts(workspace, "churn", [PAGE, DRIFT], T0).fired[0]
    app = create_app(workspace)
    add_identity(workspace, "ana", Role.OPERATOR)
    token = create_token(workspace, "ana", expires_in=timedelta(hours=1)).secret
    ana = {"Authorization": f"Bearer {token}"}
    listed = call(
        app, "GET", "/v1/alerts", params={"system": "churn", "state": "firing"}, headers=ana
    )
    assert listed.status_code == 200
    assert sorted(a["rule"] for a in listed.json()["alerts"]) == ["monitor:drift", "slo:fast"]
    # Who acted is the token's identity; a name in the body is not accepted.
    claimed = call(
        app, "POST", f"/v1/alerts/{alert.id}:resolve", json={"actor": "eve"}, headers=ana
    )
    assert claimed.status_code == 422
    acked = call(app, "POST", f"/v1/alerts/{alert.id}:acknowledge", headers=ana)
    assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "ana"
    app = create_app(workspace, insecure_local=True)
    resolved = call(app, "POST", f"/v1/alerts/{alert.id}:resolve", json={"note": "ok now"})
    assert resolved.status_code == 200 and resolved.json()["state"] == "resolved"
    assert resolved.json()["resolved_by"] == workspace.actor
    conflict = call(app, "POST", f"/v1/alerts/{alert.id}:acknowledge")
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    assert "nothing left to acknowledge" in conflict.json()["detail"]
    missing = call(app, "POST", "/v1/alerts/4242:resolve")
    assert missing.status_code == 404 and "no alert with id 4242" in missing.json()["detail"]
    unknown = call(app, "GET", "/v1/alerts", params={"system": "nope"})
    assert unknown.status_code == 404
    slos = call(app, "GET", "/v1/systems/churn/slos")
    assert slos.status_code == 200 and slos.json() == {"system": "churn", "slos": []}
