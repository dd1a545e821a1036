"""Playbooks act on alerts: each step recorded, audited, and reachable from the CLI and HTTP."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from steward import Steward
from steward.cli.main import cli
from steward.data.events import EventLog
from steward.delivery import suspension as suspensions
from steward.demo import train_churn_model
from steward.errors import InvalidInputError
from steward.governance.access import Role, add_identity, create_token
from steward.loop import playbooks, promotion
from steward.model.registry import find_system
from steward.store import AlertRow, AuditRow, select, utcnow
from steward.web import create_app
from steward.workspace.config import PlaybookConfig, SystemConfig

from .conftest import CONFIG


@dataclass(frozen=True)
class FiredAlert:
    """What the loop hands a playbook: the fields of ``steward.loop.alerts.Alert`` it needs."""

    id: int
    system: str
    rule: str
    summary: str


def fire_alert(steward: Steward, rule: str, summary: str = "ROC AUC fell to 0.61") -> FiredAlert:
    """A real alert row (actions reference it), as the alerting loop would have opened it."""
    with steward.store.write() as session:
        row = AlertRow(
            system_id=find_system(session, "churn").id,
            rule=rule,
            severity="page",
            state="firing",
            summary=summary,
            details={},
            fired_at=utcnow(),
            last_seen_at=utcnow(),
        )
        session.add(row)
        session.flush()
        return FiredAlert(row.id, "churn", rule, summary)


def configure(steward: Steward, **system: Any) -> None:
    config = yaml.safe_load(CONFIG)
    config["systems"][0].update(system)
    steward.settings.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    steward.apply()


@pytest.fixture
def events(tmp_path: Path) -> Any:
    log = EventLog(tmp_path / "events", fsync=False)
    yield log
    log.close()


@pytest.fixture(scope="module")
def small(telco: tuple[pd.DataFrame, pd.Series]) -> tuple[pd.DataFrame, pd.Series]:
    frame, target = telco
    return frame.iloc[:1500], target.iloc[:1500]


def versions(steward: Steward, small: tuple[pd.DataFrame, pd.Series], count: int) -> None:
    """Register ``count`` distinct versions (different regularisation, so different artifacts)."""
    for index in range(count):
        steward.register_model(train_churn_model(*small, C=1.0 / (index + 1)), system="churn")


# Matching


def test_playbooks_match_rules_exactly_by_glob_or_star() -> None:
    config = SystemConfig(
        name="churn",
        task="binary",
        playbooks=[
            PlaybookConfig(when="monitor:*", do=["notify"]),
            PlaybookConfig(when="slo:latency", do=["rollback"]),
            PlaybookConfig(when="*", do=["suspend"]),
        ],
    )
    whens = [p.when for p in playbooks.matching_playbooks(config, "monitor:drift")]
    assert whens == ["monitor:*", "*"]
    assert [p.when for p in playbooks.matching_playbooks(config, "slo:latency")] == [
        "slo:latency",
        "*",
    ]
    assert [p.when for p in playbooks.matching_playbooks(config, "slo:error_rate")] == ["*"]


def test_respond_runs_only_the_matching_playbooks_and_records_each_step(
    workspace: Steward, events: EventLog
) -> None:
    configure(
        workspace,
        notify={"webhook": "http://127.0.0.1:9/hook", "email": ["oncall@example.com"]},
        playbooks=[
            {"when": "slo:*", "do": ["rollback"]},
            {"when": "monitor:drift", "do": ["notify"]},
        ],
    )
    alert = fire_alert(workspace, "monitor:drift", "drift in 3 of 19 columns")
    actions = playbooks.respond(workspace, events, alert)
    assert [(a.kind, a.status, a.actor, a.alert_id) for a in actions] == [
        ("notify", "done", "steward", alert.id)
    ]
    assert "webhook" in actions[0].reason and "oncall@example.com" in actions[0].reason
    assert "no second message" in actions[0].reason
    assert playbooks.list_actions(workspace, "churn") == actions
    with workspace.store.read() as session:
        entries = session.scalars(select(AuditRow).where(AuditRow.action == "playbook.notify"))
        assert [entry.details["action_id"] for entry in entries] == [actions[0].id]
    assert workspace.verify_audit().ok
    assert playbooks.respond(workspace, events, fire_alert(workspace, "monitor:volume")) == []


# Rollback


def test_rollback_returns_champion_to_the_previous_version(
    workspace: Steward, events: EventLog, small: tuple[pd.DataFrame, pd.Series]
) -> None:
    configure(workspace, playbooks=[{"when": "*", "do": ["rollback"]}])
    versions(workspace, small, 3)
    for version in (1, 2, 3):
        workspace.move_alias("churn", "champion", version)
    [action] = playbooks.respond(workspace, events, fire_alert(workspace, "slo:roc_auc"))
    assert (action.status, action.details["from"], action.details["to"]) == ("done", 3, 2)
    assert workspace.version("churn", "champion").version == 2
    last = workspace.history("churn", "champion")[-1]
    assert (last.action, last.moved_by) == ("rollback", "steward")
    assert "alert #" in last.reason and "slo:roc_auc" in last.reason
    # A second alert keeps walking the undo stack, as `steward rollback` would.
    [again] = playbooks.respond(workspace, events, fire_alert(workspace, "slo:roc_auc"))
    assert (again.details["from"], again.details["to"]) == (2, 1)


def test_rollback_passes_over_versions_that_were_rolled_back_from_before(
    workspace: Steward, events: EventLog, small: tuple[pd.DataFrame, pd.Series]
) -> None:
    configure(workspace, playbooks=[{"when": "*", "do": ["rollback"]}])
    versions(workspace, small, 3)
    workspace.move_alias("churn", "champion", 1)
    workspace.move_alias("churn", "champion", 2)
    workspace.rollback("churn", reason="v2 misbehaved")  # back to v1: v2 is known bad
    workspace.move_alias("churn", "champion", 2)  # someone re-promoted it
    workspace.move_alias("churn", "champion", 3)
    [action] = playbooks.respond(workspace, events, fire_alert(workspace, "monitor:performance"))
    assert action.status == "done" and action.details["passed_over"] == [2]
    assert (action.details["from"], action.details["to"]) == (3, 1)
    assert workspace.version("churn", "champion").version == 1
    moves = workspace.history("churn", "champion")[-2:]
    assert [(m.action, m.from_version, m.to_version) for m in moves] == [
        ("rollback", 3, 2),
        ("rollback", 2, 1),
    ]
    # The undo stack stays coherent: nothing is left below v1.
    [after] = playbooks.respond(workspace, events, fire_alert(workspace, "monitor:performance"))
    assert after.status == "skipped"


def test_rollback_with_nothing_to_return_to_is_skipped(
    workspace: Steward, events: EventLog, small: tuple[pd.DataFrame, pd.Series]
) -> None:
    configure(workspace, playbooks=[{"when": "*", "do": ["rollback", "notify"]}])
    versions(workspace, small, 1)
    workspace.move_alias("churn", "champion", 1)
    rolled, notified = playbooks.respond(workspace, events, fire_alert(workspace, "slo:latency"))
    assert rolled.status == "skipped" and "nothing to roll back to" in rolled.reason
    assert "champion (v1)" in rolled.reason
    assert notified.status == "done"  # a skipped step does not stop the playbook
    assert workspace.version("churn", "champion").version == 1


# Suspend


def test_suspend_suspends_once_and_skips_when_already_suspended(
    workspace: Steward, events: EventLog
) -> None:
    configure(
        workspace,
        policy={"thresholds": [{"at": 0.5, "action": "contact"}]},
        playbooks=[
            {"when": "*", "do": ["suspend"], "suspend_mode": "fallback", "fallback_action": "none"}
        ],
    )
    alert = fire_alert(workspace, "slo:roc_auc")
    [first] = playbooks.respond(workspace, events, alert)
    assert first.status == "done", first.reason
    suspension = suspensions.current_suspension(workspace, "churn")
    assert suspension is not None and suspension.mode == "fallback"
    assert f"alert #{alert.id}" in suspension.reason
    [second] = playbooks.respond(workspace, events, fire_alert(workspace, "slo:roc_auc"))
    assert second.status == "skipped" and "already suspended" in second.reason


def test_listing_actions_is_newest_first_and_limited(workspace: Steward, events: EventLog) -> None:
    configure(workspace, playbooks=[{"when": "*", "do": ["notify", "rollback"]}])
    playbooks.respond(workspace, events, fire_alert(workspace, "slo:latency"))
    listed = playbooks.list_actions(workspace, "churn", limit=10)
    assert [a.kind for a in listed] == ["rollback", "notify"]
    assert [a.kind for a in playbooks.list_actions(workspace, "churn", limit=1)] == ["rollback"]
    with pytest.raises(InvalidInputError, match="unknown step"):
        playbooks.run_step(workspace, events, "churn", "reboot")


# Surfaces


def pending_approval(
    steward: Steward, events: EventLog, small: tuple[pd.DataFrame, pd.Series]
) -> int:
    """A high-risk system whose better challenger waits for approval; the approval's id."""
    frame, target = small
    golden = steward.settings.workspace / "golden.parquet"
    frame.assign(Churn=target.to_numpy()).to_parquet(golden)
    configure(steward, retrain={"command": "true", "golden_set": "golden.parquet"})
    weak = make_pipeline(
        make_column_transformer((StandardScaler(), ["MonthlyCharges"])), LogisticRegression()
    ).fit(frame, target)
    steward.register_model(weak, system="churn")
    steward.register_model(train_churn_model(frame, target), system="churn")
    steward.move_alias("churn", "champion", 1)
    steward.move_alias("churn", "challenger", 2)
    action = playbooks.run_step(steward, events, "churn", "promote_if_better")
    assert action.status == "pending_approval", action.reason
    return int(action.details["approval_id"])


def token_for(steward: Steward, name: str) -> str:
    return create_token(steward, name, expires_in=timedelta(hours=1)).secret


def call(app: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(send())


def test_http_lists_actions_and_decides_approvals_once(
    workspace: Steward, events: EventLog, small: tuple[pd.DataFrame, pd.Series]
) -> None:
    approval_id = pending_approval(workspace, events, small)
    app = create_app(workspace, events=events, insecure_local=True)
    listed = call(app, "GET", "/v1/approvals").json()["approvals"]
    assert [item["id"] for item in listed] == [approval_id]
    assert listed[0]["subject"]["figures"]["better"] is True
    # churn is high-risk: whoever requested the promotion may not approve it (four eyes).
    requester = listed[0]["requested_by"]
    self_approved = call(app, "POST", f"/v1/approvals/{approval_id}:approve", json={})
    assert self_approved.status_code == 403, self_approved.text
    assert "four eyes" in self_approved.json()["detail"]
    assert requester == workspace.actor
    assert workspace.version("churn", "champion").version == 1
    app = create_app(workspace, events=events)
    add_identity(workspace, "ana", Role.APPROVER)
    ana = {"Authorization": f"Bearer {token_for(workspace, 'ana')}"}
    decided = call(
        app, "POST", f"/v1/approvals/{approval_id}:approve", json={"note": "ok"}, headers=ana
    )
    assert decided.status_code == 200 and decided.json()["state"] == "approved"
    assert decided.json()["decided_by"] == "ana"
    assert workspace.version("churn", "champion").version == 2
    app = create_app(workspace, events=events, insecure_local=True)
    twice = call(app, "POST", f"/v1/approvals/{approval_id}:reject", json={"note": ""})
    assert twice.status_code == 409
    assert twice.headers["content-type"] == "application/problem+json"
    assert "already approved" in twice.json()["detail"]
    missing = call(app, "POST", "/v1/approvals/4242:approve", json={})
    assert missing.status_code == 404 and missing.json()["title"] == "Not found"
    assert call(app, "GET", "/v1/approvals?state=bogus").status_code == 422
    assert call(app, "POST", f"/v1/approvals/{2**63}:approve").status_code == 422
    actions = call(app, "GET", "/v1/systems/churn/actions?limit=5").json()["actions"]
    assert [(a["kind"], a["status"]) for a in actions] == [
        ("promote", "done"),
        ("promote_if_better", "pending_approval"),
    ]
    assert call(app, "GET", "/v1/systems/nope/actions").status_code == 404


def test_cli_compares_promotes_and_decides_approvals(
    workspace: Steward, events: EventLog, small: tuple[pd.DataFrame, pd.Series]
) -> None:
    approval_id = pending_approval(workspace, events, small)
    runner = CliRunner()
    settings = workspace.settings

    def steward_cli(*args: str) -> Any:
        return runner.invoke(
            cli,
            ["--workspace", str(settings.workspace), "--database-url", settings.database_url,
             "--events-dir", str(events.root), "--user", "ana", *args],
        )  # fmt: skip

    compared = steward_cli("compare", "churn", "--format", "json")
    assert compared.exit_code == 0, compared.output
    assert json.loads(compared.output)["better"] is True
    assert "better" in steward_cli("compare", "churn").output
    listed = steward_cli("approvals", "list", "--system", "churn")
    assert listed.exit_code == 0 and f"{approval_id}" in listed.output
    refused = steward_cli("promote", "churn")
    assert refused.exit_code == 1 and "--if-better" in refused.output
    approved = steward_cli("approvals", "approve", str(approval_id), "--note", "checked")
    assert approved.exit_code == 0 and "v1 -> v2" in approved.output
    again = steward_cli("approvals", "reject", str(approval_id))
    assert again.exit_code == 1 and "already approved by ana" in again.output
    shown = steward_cli("actions", "churn", "--format", "json")
    assert [a["kind"] for a in json.loads(shown.output)] == ["promote", "promote_if_better"]
    assert promotion.list_approvals(workspace, state="approved")[0].decision_note == "checked"
    # Champion is v2 now and the challenger alias still points at it: nothing to compare.
    assert "nothing to compare" in steward_cli("promote", "churn", "--if-better").output
