"""The review queue and suspended automation, on the real stores, the real app and a real server."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import select

from steward import Steward
from steward.cli.main import cli
from steward.data.events import EventLog
from steward.delivery import suspension as suspensions
from steward.errors import ConflictError, InvalidInputError, NotFoundError, UnknownSystemError
from steward.governance import review
from steward.model.policy import Policy, decide
from steward.monitoring.metrics import join_outcomes
from steward.store import AuditRow, ReviewDecisionRow, SuspensionRow
from steward.web import create_app

from .conftest import CONFIG, Server

PROBLEM = "application/problem+json"
POLICY = {
    "thresholds": [{"at": 0.5, "action": "contact"}, {"at": 0.3, "action": "email"}],
    "default_action": "none",
    "holdout": 0.2,
    "review_band": [0.4, 0.6],
    "salt": "review-test",
}


def configure(steward: Steward, telco_model: Any, policy: dict[str, Any] | None = POLICY) -> None:
    config = yaml.safe_load(CONFIG)
    if policy is not None:
        config["systems"][0]["policy"] = policy
    steward.settings.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    steward.apply()
    steward.register_model(telco_model, system="churn")
    steward.move_alias("churn", "champion", 1)


class Api:
    """The app in process through httpx's ASGI transport, seeing store changes at once."""

    def __init__(self, steward: Steward, events: EventLog) -> None:
        self.app = create_app(steward, events=events, insecure_local=True)
        self.app.state.service.refresh_seconds = 0.0
        self.events = events

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://localhost"
            ) as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(send())

    def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        response = self.request("POST", "/v1/systems/churn/predict", json={"records": records})
        assert response.status_code == 200, response.text
        return list(response.json()["predictions"])


@pytest.fixture
def events(tmp_path: Path) -> Iterator[EventLog]:
    log = EventLog(tmp_path / "events")
    yield log
    log.close()


@pytest.fixture
def api(workspace: Steward, telco_model: Any, events: EventLog) -> Api:
    configure(workspace, telco_model)
    return Api(workspace, events)


def records_of(frame: pd.DataFrame, n: int, start: int = 0) -> list[dict[str, Any]]:
    return list(json.loads(frame.iloc[start : start + n].to_json(orient="records")))


def audit_actions(steward: Steward) -> list[tuple[str, str, dict[str, Any]]]:
    with steward.store.read() as session:
        rows = session.scalars(select(AuditRow).order_by(AuditRow.id))
        return [(row.action, row.target, row.details) for row in rows]


def decisions(steward: Steward) -> list[ReviewDecisionRow]:
    with steward.store.read() as session:
        return list(session.scalars(select(ReviewDecisionRow).order_by(ReviewDecisionRow.id)))


def logged(events: EventLog) -> pd.DataFrame:
    return events.scan("prediction", "churn").to_pandas().set_index("id")


def expected_decisions(records: list[dict[str, Any]], scores: list[float]) -> list[Any]:
    policy = Policy.from_dict(POLICY)
    return [
        decide(policy, score, record["customerID"])
        for record, score in zip(records, scores, strict=True)
    ]


# --- suspension ------------------------------------------------------------------------------------


def test_suspend_resume_lifecycle_is_stored_and_audited(workspace: Steward) -> None:
    assert suspensions.current_suspension(workspace, "churn") is None
    started = suspensions.suspend(workspace, "churn", mode="review", reason="drift on tenure")
    assert (started.mode, started.reason, started.started_by) == (
        "review",
        "drift on tenure",
        "tester",
    )
    assert suspensions.current_suspension(workspace, "churn") == started
    ended = suspensions.resume(workspace, "churn", reason="explained", actor="ana")
    assert ended.id == started.id and ended.ended_by == "ana" and ended.ended_at is not None
    assert suspensions.current_suspension(workspace, "churn") is None
    again = suspensions.suspend(
        workspace, "churn", mode="fallback", fallback_action="none", reason="AUC fell"
    )
    assert again.id != started.id and again.fallback_action == "none"
    with workspace.store.read() as session:
        rows = session.scalars(select(SuspensionRow).order_by(SuspensionRow.id)).all()
    assert [(row.mode, row.ended_at is None) for row in rows] == [
        ("review", False),
        ("fallback", True),
    ]
    trail = [entry for entry in audit_actions(workspace) if entry[0].startswith("system.")]
    assert [(action, target) for action, target, _ in trail[-3:]] == [
        ("system.suspend", "churn"),
        ("system.resume", "churn"),
        ("system.suspend", "churn"),
    ]
    assert trail[-2][2]["reason"] == "explained" and trail[-1][2]["fallback_action"] == "none"
    assert workspace.verify_audit().ok


def test_suspending_twice_names_since_when_and_why(workspace: Steward) -> None:
    first = suspensions.suspend(workspace, "churn", reason="drift on tenure")
    with pytest.raises(ConflictError) as caught:
        suspensions.suspend(
            workspace, "churn", mode="fallback", fallback_action="none", reason="again"
        )
    message = str(caught.value)
    assert "already suspended" in message and "drift on tenure" in message
    assert f"{first.started_at:%Y-%m-%d %H:%M:%S}" in message and "steward resume churn" in message


def test_resuming_a_running_system_is_a_conflict(workspace: Steward) -> None:
    with pytest.raises(ConflictError, match="'churn' is not suspended"):
        suspensions.resume(workspace, "churn")


@pytest.mark.parametrize(
    ("mode", "fallback", "message"),
    [
        ("fallback", None, "needs a fallback_action"),
        ("fallback", "  ", "needs a fallback_action"),
        ("fallback", "review", "cannot be 'review'"),
        ("panic", None, "mode 'panic' is not known"),
    ],
)
def test_invalid_suspensions_are_refused_before_anything_is_stored(
    workspace: Steward, mode: str, fallback: str | None, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        suspensions.suspend(workspace, "churn", mode=mode, fallback_action=fallback, reason="x")
    assert suspensions.current_suspension(workspace, "churn") is None


def test_a_playbook_declaring_review_with_a_fallback_action_still_suspends(
    workspace: Steward,
) -> None:
    # A playbook must not fail mid-incident over a stray key; people typing it are refused instead.
    suspension = suspensions.suspend(workspace, "churn", mode="review", fallback_action="none")
    assert suspension.mode == "review" and suspension.fallback_action is None
    with pytest.raises(InvalidInputError, match="applies only to mode 'fallback'"):
        suspensions.check_surface_request("review", "none")


def test_suspending_an_unknown_system_names_the_known_ones(workspace: Steward) -> None:
    with pytest.raises(UnknownSystemError, match="known systems: churn"):
        suspensions.suspend(workspace, "fraud", reason="x")


# --- serving under suspension ------------------------------------------------------------------------


def test_review_band_predictions_are_queued_with_their_reason(api: Api, telco) -> None:
    frame, _ = telco
    records = records_of(frame, 300)
    served = api.predict(records)
    expected = expected_decisions(records, [item["score"] for item in served])
    assert [item["decision"] for item in served] == [decision.action for decision in expected]
    banded = [item for item in served if item["review"]]
    assert banded, "the fixture's review band should catch some of 300 customers"
    assert all(item["reason"] == "review band" and not item["suspended"] for item in banded)
    pending = review.pending_reviews(api.app.state.steward, api.events, "churn", limit=1000)
    assert [item.id for item in pending] == [item["id"] for item in banded]
    by_id = {
        record_id: decision
        for record_id, decision in zip([item["id"] for item in served], expected, strict=True)
    }
    for item in pending:
        assert item.reason == "review band"
        assert item.intended_action == by_id[item.id].intended_action
        assert item.inputs["tenure"] == records[[s["id"] for s in served].index(item.id)]["tenure"]
        assert item.model_version == 1 and 0.4 <= (item.score or 0) < 0.6


def test_review_mode_sends_every_decision_to_people_but_keeps_the_holdout(
    api: Api, workspace: Steward, telco
) -> None:
    frame, _ = telco
    suspensions.suspend(workspace, "churn", reason="drift on tenure")
    records = records_of(frame, 200)
    served = api.predict(records)
    expected = expected_decisions(records, [item["score"] for item in served])
    for item, decision in zip(served, expected, strict=True):
        if decision.holdout:
            assert item["decision"] == "none" and item["holdout"] and not item["suspended"]
        else:
            assert item["decision"] == "review" and item["review"] and item["suspended"]
            assert item["reason"] == "suspended: drift on tenure"
    assert 0 < sum(decision.holdout for decision in expected) < len(expected)
    rows = logged(api.events)
    for item, decision in zip(served, expected, strict=True):
        row = rows.loc[item["id"]]
        assert row["decision"] == item["decision"]
        assert row["intended_action"] == decision.intended_action
        assert row["score"] == pytest.approx(item["score"], abs=0)
        output = json.loads(row["output"])
        if item["suspended"]:
            assert output["output"] == item["score"]
            assert output["suspended"]["mode"] == "review"
            assert output["suspended"]["reason"] == "drift on tenure"
        else:
            assert output == item["score"]
    pending = review.pending_reviews(workspace, api.events, "churn", limit=1000)
    assert len(pending) == sum(not decision.holdout for decision in expected)
    assert {item.reason for item in pending} == {"suspended: drift on tenure"}


def test_fallback_mode_gives_every_record_the_fixed_action_and_still_logs_the_score(
    api: Api, workspace: Steward, telco, telco_model: Any
) -> None:
    frame, _ = telco
    suspensions.suspend(
        workspace, "churn", mode="fallback", fallback_action="email", reason="AUC fell"
    )
    records = records_of(frame, 100)
    served = api.predict(records)
    direct = telco_model.predict_proba(frame.head(100).drop(columns=["customerID"]))[:, 1]
    np.testing.assert_allclose([item["score"] for item in served], direct, rtol=0, atol=1e-12)
    expected = expected_decisions(records, [item["score"] for item in served])
    for item, decision in zip(served, expected, strict=True):
        wanted = "none" if decision.holdout else "email"
        assert item["decision"] == wanted and item["suspended"] == (not decision.holdout)
    rows = logged(api.events)
    assert rows["score"].notna().all()
    suspended = [item["id"] for item in served if item["suspended"]]
    assert (rows.loc[suspended, "decision"] == "email").all()
    assert review.pending_reviews(workspace, api.events, "churn") == []


def test_resume_hands_decisions_back_to_the_policy(api: Api, workspace: Steward, telco) -> None:
    frame, _ = telco
    records = records_of(frame, 100)
    suspensions.suspend(workspace, "churn", reason="x")
    assert all(item["suspended"] for item in api.predict(records) if not item["holdout"])
    suspensions.resume(workspace, "churn")
    served = api.predict(records)
    expected = expected_decisions(records, [item["score"] for item in served])
    assert [item["decision"] for item in served] == [decision.action for decision in expected]
    assert not any(item["suspended"] for item in served)


def test_a_suspension_reaches_a_running_service_within_its_refresh(
    workspace: Steward, telco_model: Any, events: EventLog, telco
) -> None:
    configure(workspace, telco_model)
    api = Api(workspace, events)
    api.app.state.service.refresh_seconds = 0.5
    frame, _ = telco
    records = [record for record in records_of(frame, 40)]
    api.predict(records)  # loads the runtime, unsuspended
    suspensions.suspend(workspace, "churn", reason="now")
    # a bound generous for a loaded CI machine; the replica tests measure the real delay
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if any(item["suspended"] for item in api.predict(records[:5])):
            break
        time.sleep(0.05)
    else:
        pytest.fail("the suspension did not reach serving within 5 s (its refresh is 0.5 s)")


# --- deciding reviews --------------------------------------------------------------------------------


def suspended_predictions(api: Api, steward: Steward, frame: pd.DataFrame) -> list[dict[str, Any]]:
    suspensions.suspend(steward, "churn", reason="drift")
    return [item for item in api.predict(records_of(frame, 60)) if item["suspended"]]


def test_approving_and_overriding_store_audit_and_log_the_decision(
    api: Api, workspace: Steward, telco
) -> None:
    frame, _ = telco
    queued = suspended_predictions(api, workspace, frame)
    first, second = queued[0], queued[1]
    proposed = logged(api.events).loc[[first["id"], second["id"]], "intended_action"].tolist()

    approved = review.decide_review(workspace, api.events, "churn", first["id"], note="fine")
    assert (approved.action, approved.overridden, approved.proposed_action) == (
        proposed[0],
        False,
        proposed[0],
    )
    other = "call-manager"
    overridden = review.decide_review(
        workspace, api.events, "churn", second["id"], action=other, actor="ana"
    )
    assert overridden.overridden and overridden.action == other and overridden.decided_by == "ana"

    stored = decisions(workspace)
    assert [(row.prediction_id, row.action, row.overridden, row.note) for row in stored] == [
        (first["id"], proposed[0], False, "fine"),
        (second["id"], other, True, ""),
    ]
    trail = [entry for entry in audit_actions(workspace) if entry[0].startswith("review.")]
    # Each entry binds the decision row it wrote (steward.store.bindings).
    assert [[r["table"] for r in details.pop("rows")] for _, _, details in trail] == [
        ["review_decisions"],
        ["review_decisions"],
    ]
    assert trail == [
        (
            "review.approve",
            f"churn/{first['id']}",
            # the note's text lives in the row; the entry keeps its hash (erasure leaves no copy)
            {
                "proposed_action": proposed[0],
                "action": proposed[0],
                "note_sha256": hashlib.sha256(b"fine").hexdigest(),
            },
        ),
        (
            "review.override",
            f"churn/{second['id']}",
            {"proposed_action": proposed[1], "action": other, "note_sha256": None},
        ),
    ]
    outcomes = api.events.scan("outcome", "churn").to_pandas().set_index("id")
    assert outcomes.loc[f"review:{first['id']}", "value_text"] == f"approved:{proposed[0]}"
    assert outcomes.loc[f"review:{second['id']}", "value_text"] == f"override:{other}"
    assert outcomes.loc[f"review:{second['id']}", "prediction_id"] == second["id"]
    assert pd.isna(outcomes.loc[f"review:{second['id']}", "value"])
    pending = {item.id for item in review.pending_reviews(workspace, api.events, "churn")}
    assert pending == {item["id"] for item in queued[2:]}


def test_approving_with_the_proposed_action_is_an_approval(
    api: Api, workspace: Steward, telco
) -> None:
    frame, _ = telco
    item = suspended_predictions(api, workspace, frame)[0]
    proposed = logged(api.events).loc[item["id"], "intended_action"]
    decision = review.decide_review(workspace, api.events, "churn", item["id"], action=proposed)
    assert not decision.overridden and decision.outcome_text == f"approved:{proposed}"


def test_deciding_twice_names_who_decided_when(api: Api, workspace: Steward, telco) -> None:
    frame, _ = telco
    item = suspended_predictions(api, workspace, frame)[0]
    first = review.decide_review(workspace, api.events, "churn", item["id"], actor="ana")
    with pytest.raises(ConflictError) as caught:
        review.decide_review(workspace, api.events, "churn", item["id"], action="none")
    message = str(caught.value)
    assert "already decided: ana approved" in message
    assert f"{first.decided_at:%Y-%m-%d %H:%M:%S}" in message
    assert len(decisions(workspace)) == 1
    outcome = api.events.scan("outcome", "churn").to_pandas()
    assert outcome["value_text"].tolist() == [first.outcome_text]


def test_unknown_and_unreviewed_predictions_are_refused(
    api: Api, workspace: Steward, telco
) -> None:
    frame, _ = telco
    served = api.predict(records_of(frame, 60))
    acted = next(item for item in served if item["decision"] != "review")
    with pytest.raises(NotFoundError, match="no prediction with id 'nope'"):
        review.decide_review(workspace, api.events, "churn", "nope")
    with pytest.raises(InvalidInputError, match=f"its decision is '{acted['decision']}'"):
        review.decide_review(workspace, api.events, "churn", acted["id"])
    queued = next(item for item in served if item["decision"] == "review")
    with pytest.raises(InvalidInputError, match="cannot be 'review'"):
        review.decide_review(workspace, api.events, "churn", queued["id"], action="review")
    with pytest.raises(InvalidInputError, match="limit 0"):
        review.pending_reviews(workspace, api.events, "churn", limit=0)
    assert decisions(workspace) == []


def test_without_a_policy_a_suspension_still_queues_and_needs_an_explicit_action(
    workspace: Steward, telco_model: Any, events: EventLog, telco
) -> None:
    configure(workspace, telco_model, policy=None)
    api = Api(workspace, events)
    frame, _ = telco
    assert {item["decision"] for item in api.predict(records_of(frame, 5))} == {None}
    suspensions.suspend(workspace, "churn", reason="no policy yet")
    served = api.predict(records_of(frame, 5, start=5))
    assert {(item["decision"], item["suspended"]) for item in served} == {("review", True)}
    pending = review.pending_reviews(workspace, events, "churn")
    assert [item.id for item in pending] == [item["id"] for item in served]
    assert {item.intended_action for item in pending} == {None}
    with pytest.raises(InvalidInputError, match="no proposed action to approve"):
        review.decide_review(workspace, events, "churn", served[0]["id"])
    decision = review.decide_review(workspace, events, "churn", served[0]["id"], action="call")
    assert decision.overridden and decision.outcome_text == "override:call"


def test_pending_reviews_respect_the_limit_oldest_first(
    api: Api, workspace: Steward, telco
) -> None:
    frame, _ = telco
    queued = suspended_predictions(api, workspace, frame)
    assert [
        item.id for item in review.pending_reviews(workspace, api.events, "churn", limit=3)
    ] == [item["id"] for item in queued[:3]]


# --- a reviewer's decision is not a label ---------------------------------------------------------


def test_review_outcomes_never_replace_a_real_label() -> None:
    times = pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-05", "2026-01-09"], utc=True)
    predictions = pd.DataFrame(
        {
            "id": ["p1", "p2"],
            "entity_key": ["c1", "c2"],
            "event_time": times[:2],
            "score": [0.7, 0.4],
        }
    )
    outcomes = pd.DataFrame(
        {
            "id": ["o1", "review:p1", "review:p2"],
            "prediction_id": ["p1", "p1", "p2"],
            "entity_key": ["c1", "c1", "c2"],
            "value": [1.0, np.nan, np.nan],
            "value_text": [None, "approved:contact", "override:none"],
            "event_time": [times[2], times[3], times[2]],
        }
    )
    by_id = join_outcomes(predictions, outcomes, by="prediction_id")
    assert by_id["labeled"].tolist() == [True, False]
    assert by_id["outcome_value"].tolist()[0] == 1.0 and by_id["n_outcomes"].tolist() == [1, 0]
    by_entity = join_outcomes(predictions, outcomes, by="entity_key")
    assert by_entity["outcome_id"].tolist()[0] == "o1" and by_entity["labeled"].tolist() == [
        True,
        False,
    ]
    without = join_outcomes(predictions, outcomes.iloc[:1], by="prediction_id")
    pd.testing.assert_frame_equal(by_id, without)


# --- HTTP -----------------------------------------------------------------------------------------


def test_http_suspend_review_decide_and_resume(api: Api, workspace: Steward, telco) -> None:
    frame, _ = telco
    assert api.request("GET", "/v1/systems/churn/suspension").json() == {
        "system": "churn",
        "suspended": False,
        "suspension": None,
    }
    started = api.request(
        "POST", "/v1/systems/churn:suspend", json={"mode": "review", "reason": "drift"}
    )
    assert started.status_code == 200, started.text
    assert started.json()["suspension"]["reason"] == "drift"
    state = api.request("GET", "/v1/systems/churn/suspension").json()
    assert state["suspended"] and state["suspension"]["mode"] == "review"
    served = api.predict(records_of(frame, 30))
    queue = api.request("GET", "/v1/systems/churn/reviews", params={"limit": 500}).json()
    assert [item["id"] for item in queue["reviews"]] == [i["id"] for i in served if i["suspended"]]
    assert queue["reviews"][0]["reason"] == "suspended: drift"
    assert isinstance(queue["reviews"][0]["inputs"], dict)
    target = queue["reviews"][0]["id"]
    decided = api.request(
        "POST", f"/v1/systems/churn/reviews/{target}", json={"action": "none", "note": "n"}
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["overridden"] == (queue["reviews"][0]["intended_action"] != "none")
    again = api.request("POST", f"/v1/systems/churn/reviews/{target}", json={})
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    assert "already decided" in again.json()["detail"]
    ended = api.request("POST", "/v1/systems/churn:resume", json={"reason": "ok"})
    assert ended.status_code == 200 and ended.json()["suspension"]["ended_at"]
    assert api.request("POST", "/v1/systems/churn:resume").status_code == 409


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/v1/systems/fraud/reviews", None, 404),
        ("GET", "/v1/systems/churn/reviews?limit=0", None, 422),
        ("GET", "/v1/systems/fraud/suspension", None, 404),
        ("POST", "/v1/systems/churn/reviews/nope", {}, 404),
        ("POST", "/v1/systems/churn/reviews/nope", {"verdict": "x"}, 422),
        ("POST", "/v1/systems/churn:suspend", {"mode": "panic"}, 422),
        ("POST", "/v1/systems/churn:suspend", {"mode": "fallback"}, 422),
        ("POST", "/v1/systems/churn:suspend", {"mode": "review", "fallback_action": "none"}, 422),
        ("POST", "/v1/systems/fraud:suspend", {"reason": "x"}, 404),
        ("POST", "/v1/systems/churn:resume", {}, 409),
    ],
)
def test_http_errors_are_problems_never_500(
    api: Api, method: str, path: str, body: Any, status: int
) -> None:
    response = (
        api.request(method, path, json=body) if body is not None else api.request(method, path)
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert set(problem) >= {"type", "title", "status", "detail", "instance"}
    assert problem["detail"]


# --- CLI ------------------------------------------------------------------------------------------


def run(steward: Steward, *args: str, ok: bool = True) -> Any:
    result = CliRunner().invoke(
        cli,
        [
            "--workspace",
            str(steward.settings.workspace),
            "--database-url",
            steward.settings.database_url,
            "--user",
            "cli-tester",
            *args,
        ],
        catch_exceptions=False,
    )
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_cli_suspend_list_approve_override_resume(
    workspace: Steward, telco_model: Any, telco
) -> None:
    configure(workspace, telco_model)
    frame, _ = telco
    assert "suspended to review" in run(workspace, "suspend", "churn", "--reason", "drift").output
    refused = run(workspace, "suspend", "churn", "--reason", "again", ok=False)
    assert refused.exit_code == 1 and "already suspended" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    with EventLog(workspace.settings.events_dir) as log:
        api = Api(workspace, log)
        queued = [item for item in api.predict(records_of(frame, 20)) if item["suspended"]]
    listed = json.loads(run(workspace, "review", "list", "churn", "--format", "json").output)
    assert [item["id"] for item in listed] == [item["id"] for item in queued]
    text = run(workspace, "review", "list", "churn").output
    assert "suspended: drift" in text and "is suspended to review" in text
    approved = run(workspace, "review", "approve", "churn", queued[0]["id"], "--note", "ok")
    assert f"approved churn {queued[0]['id']}" in approved.output
    overridden = run(workspace, "review", "override", "churn", queued[1]["id"], "call")
    assert "overrode" in overridden.output and "'call'" in overridden.output
    stored = decisions(workspace)
    assert [(row.decided_by, row.overridden) for row in stored] == [
        ("cli-tester", False),
        ("cli-tester", True),
    ]
    left = json.loads(run(workspace, "review", "list", "churn", "--format", "json").output)
    assert [item["id"] for item in left] == [item["id"] for item in queued[2:]]
    assert "resumed churn" in run(workspace, "resume", "churn", "--reason", "fixed").output
    not_suspended = run(workspace, "resume", "churn", ok=False)
    assert not_suspended.exit_code == 1 and "not suspended" in not_suspended.output
    fallback = run(workspace, "suspend", "churn", "--mode", "fallback", "--reason", "x", ok=False)
    assert fallback.exit_code == 1 and "needs a fallback_action" in fallback.output
    stray = run(
        workspace, "suspend", "churn", "--fallback-action", "none", "--reason", "x", ok=False
    )
    assert stray.exit_code == 1 and "applies only to mode 'fallback'" in stray.output
    assert suspensions.current_suspension(workspace, "churn") is None


# --- end to end, over a real server ---------------------------------------------------------------


def test_end_to_end_suspend_review_decide_resume_over_a_real_server(
    server: Server, workspace: Steward, telco
) -> None:
    frame, _ = telco
    server.start()
    events = EventLog(workspace.settings.events_dir)  # reads what the server writes
    with httpx.Client(base_url=server.url, timeout=60) as client:
        records = records_of(frame, 30)
        before = client.post("/v1/systems/churn/predict", json={"records": records}).json()
        assert not any(item["suspended"] for item in before["predictions"])

        suspended = client.post("/v1/systems/churn:suspend", json={"reason": "drift on tenure"})
        assert suspended.status_code == 200, suspended.text
        assert audit_actions(workspace)[-1][:2] == ("system.suspend", "churn")
        started = time.monotonic()
        while True:
            served = client.post("/v1/systems/churn/predict", json={"records": records}).json()
            acting = [item for item in served["predictions"] if not item["holdout"]]
            if all(item["decision"] == "review" for item in acting):
                break
            assert time.monotonic() - started < 1.5, "serving still acts a second after suspending"
            time.sleep(0.05)
        assert time.monotonic() - started <= 1.5
        assert all(item["reason"] == "suspended: drift on tenure" for item in acting)

        queue = client.get("/v1/systems/churn/reviews", params={"limit": 1000}).json()["reviews"]
        assert {item["id"] for item in acting} <= {item["id"] for item in queue}
        first, second = acting[0]["id"], acting[1]["id"]

        approved = client.post(f"/v1/systems/churn/reviews/{first}", json={"note": "agreed"})
        assert approved.status_code == 200, approved.text
        assert [(row.prediction_id, row.overridden) for row in decisions(workspace)] == [
            (first, False)
        ]
        assert audit_actions(workspace)[-1][:2] == ("review.approve", f"churn/{first}")
        outcomes = events.scan("outcome", "churn").to_pandas().set_index("id")
        assert outcomes.loc[f"review:{first}", "value_text"].startswith("approved:")

        overridden = client.post(f"/v1/systems/churn/reviews/{second}", json={"action": "call"})
        assert overridden.status_code == 200, overridden.text
        assert [(row.prediction_id, row.action) for row in decisions(workspace)][-1] == (
            second,
            "call",
        )
        assert audit_actions(workspace)[-1][:2] == ("review.override", f"churn/{second}")
        outcomes = events.scan("outcome", "churn").to_pandas().set_index("id")
        assert outcomes.loc[f"review:{second}", "value_text"] == "override:call"
        assert outcomes.loc[f"review:{second}", "prediction_id"] == second
        remaining = client.get("/v1/systems/churn/reviews", params={"limit": 1000}).json()
        assert {first, second}.isdisjoint(item["id"] for item in remaining["reviews"])

        resumed = client.post("/v1/systems/churn:resume", json={"reason": "explained"})
        assert resumed.status_code == 200, resumed.text
        assert audit_actions(workspace)[-1][:2] == ("system.resume", "churn")
        with workspace.store.read() as session:
            assert session.scalars(select(SuspensionRow)).one().ended_at is not None
        started = time.monotonic()
        while True:
            served = client.post("/v1/systems/churn/predict", json={"records": records}).json()
            if not any(item["suspended"] for item in served["predictions"]):
                break
            assert time.monotonic() - started < 1.5, "still suspended a second after resuming"
            time.sleep(0.05)
        assert workspace.verify_audit().ok
    server.stop()
    events.close()


def test_the_overview_counts_every_pending_review_not_the_first_hundred(
    workspace: Steward,
) -> None:
    """The overview said "100 reviews pending" when 129 were: a cap that did not say so."""
    from .test_web import Api

    moment = datetime(2026, 3, 2, tzinfo=UTC)
    workspace.events.append(
        [
            {
                "kind": "prediction",
                "system": "churn",
                "id": f"p{index}",
                "event_time": moment + timedelta(minutes=index),
                "decision": "review",
                "intended_action": "call",
                "score": 0.5,
                "inputs": "{}",
            }
            for index in range(129)
        ]
    )
    assert review.count_pending_reviews(workspace, workspace.events, "churn") == 129
    assert len(review.pending_reviews(workspace, workspace.events, "churn")) == 100  # a page
    page = Api(workspace, workspace.events).request("GET", "/").text
    assert "129 reviews" in page
