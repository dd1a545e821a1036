"""Incidents: declared by a person or a playbook, the Art. 73 clock, actions, a written cause."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from click.testing import CliRunner

from steward import Steward
from steward.cli.main import cli
from steward.errors import ConflictError, InvalidInputError, NotFoundError
from steward.governance.incidents import (
    add_action,
    close_incident,
    declare_incident,
    list_incidents,
    timeline,
)
from steward.loop.alerts import Breach, sync_alerts
from steward.loop.playbooks import respond
from steward.store import audit

T0 = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.mark.parametrize(("kind", "days"), [("serious", 15), ("death", 10), ("widespread", 2)])
def test_the_kind_sets_the_article_73_clock(workspace: Steward, kind: str, days: int) -> None:
    incident = declare_incident(workspace, "churn", "recall fell", kind=kind, at=T0)
    assert incident.report_due_at == T0 + timedelta(days=days)
    assert incident.clock(T0 + timedelta(hours=30)) == (
        f"{days - 2} days 18 hours left to report"
        if days > 2
        else "18 hours 0 minutes left to report"
    )
    late = T0 + timedelta(days=days, hours=3)
    assert incident.clock(late) == "report overdue by 3 hours 0 minutes"
    assert declare_incident(workspace, "churn", "x", kind="other").clock() == (
        "no legal clock (internal incident)"
    )


def test_closing_needs_a_written_cause_and_the_timeline_comes_from_the_audit_tree(
    workspace: Steward,
) -> None:
    fired = sync_alerts(
        workspace, "churn", [Breach("monitor:drift", "page", "drift in tenure")], T0
    )
    alert = fired.fired[0]
    incident = declare_incident(workspace, "churn", "drift in tenure", alert_id=alert.id)
    add_action(workspace, incident.id, "suspended to review while the feed is checked")
    with pytest.raises(InvalidInputError, match="written cause of at least 20 characters"):
        close_incident(workspace, incident.id, cause="fixed")
    closed = close_incident(
        workspace, incident.id, cause="a billing feed sent MonthlyCharges in cents for 3 days"
    )
    assert closed.state == "closed" and closed.closed_by == workspace.actor
    with pytest.raises(ConflictError, match="was closed by"):
        add_action(workspace, incident.id, "one more")
    story = timeline(workspace, incident.id)
    assert [entry["action"] for entry in story] == [
        "alert.fire", "incident.declare", "incident.action", "incident.close"
    ]  # fmt: skip
    for entry in story:
        proof = audit.prove(workspace.store, workspace.settings.store_dir, entry["id"])
        key = (workspace.settings.store_dir / "audit-signing.pub").read_text()  # made by prove
        assert audit.verify_inclusion_proof(json.dumps(proof), key).ok


def test_a_playbook_declares_the_alert_an_incident_once(workspace: Steward) -> None:
    config = yaml.safe_load(workspace.settings.config_path.read_text())
    config["systems"][0]["playbooks"] = [
        {"when": "monitor:performance", "do": ["declare_incident"], "incident_kind": "death",
         "incident_severity": "critical"}
    ]  # fmt: skip
    workspace.settings.config_path.write_text(yaml.safe_dump(config))
    workspace.apply()
    breach = Breach("monitor:performance", "page", "recall 0.41, under 0.6")
    alert = sync_alerts(workspace, "churn", [breach], T0).fired[0]
    (action,) = respond(workspace, workspace.events, alert)
    assert action.status == "done" and "(death): 10 days 0 hours left to report" in action.reason
    (incident,) = list_incidents(workspace, "churn")
    assert (incident.kind, incident.severity, incident.alert_id) == ("death", "critical", alert.id)
    assert incident.report_due_at == alert.last_seen_at + timedelta(days=10)
    (again,) = respond(workspace, workspace.events, alert)
    assert again.status == "skipped" and "already an incident" in again.reason
    assert len(list_incidents(workspace, "churn")) == 1


def test_bad_input_is_named(workspace: Steward) -> None:
    with pytest.raises(InvalidInputError, match="kind 'bad' is not one of serious"):
        declare_incident(workspace, "churn", "x", kind="bad")
    with pytest.raises(NotFoundError, match="has no alert #99"):
        declare_incident(workspace, "churn", "x", alert_id=99)
    with pytest.raises(NotFoundError, match="no incident #7"):
        add_action(workspace, 7, "x")
    with pytest.raises(InvalidInputError, match="needs a title"):
        declare_incident(workspace, "churn", "  ")


def test_the_cli_declares_lists_and_closes(workspace: Steward) -> None:
    base = ["--workspace", str(workspace.settings.workspace), "--database-url",
            workspace.settings.database_url]  # fmt: skip
    runner = CliRunner()
    made = runner.invoke(cli, [*base, "incidents", "declare", "churn", "wrong offers sent"])
    assert made.exit_code == 0 and "incident #1 declared" in made.output, made.output
    assert "14 days 23 hours left to report" in made.output
    listed = runner.invoke(cli, [*base, "incidents", "list", "churn", "--format", "json"])
    assert json.loads(listed.output)[0]["title"] == "wrong offers sent"
    short = runner.invoke(cli, [*base, "incidents", "close", "1", "--cause", "typo"])
    assert short.exit_code == 1 and "written cause" in short.output
    done = runner.invoke(
        cli, [*base, "incidents", "close", "1", "--cause", "the offer table was loaded twice"]
    )
    assert done.exit_code == 0, done.output
    shown = runner.invoke(cli, [*base, "incidents", "show", "1"])
    assert "incident.close" in shown.output and "cause: the offer table" in shown.output
