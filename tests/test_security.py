"""The attacks an outsider tried, replayed against a real `steward serve` with sign-in on.

Each must be refused with 401, 403, 400 or 415 problem+json, and nothing may change in the store:
the approval stays pending, the champion stays, no suspension opens, no alert is resolved, no
review decision or outcome is written, and the audit log does not grow.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from steward import Steward
from steward.cli.main import cli
from steward.data.events import EventLog
from steward.governance.access import (
    Role,
    add_identity,
    create_token,
    csrf_token,
    login_link,
    revoke_token,
)
from steward.loop.alerts import list_alerts, sync_alerts
from steward.loop.promotion import list_approvals
from steward.store import AuditRow, ReviewDecisionRow, SuspensionRow
from steward.web import create_app
from tests.conftest import Server
from tests.test_alerts import PAGE, T0
from tests.test_playbooks import pending_approval

EVIL = "http://evil.example"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def session_cookie(secret: str) -> dict[str, str]:
    """The Cookie header a browser sends with the session (set per request, not in a jar)."""
    return {"Cookie": f"steward_session={secret}"}


@pytest.fixture
def guarded(workspace: Steward, telco: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> Any:
    """A high-risk system with a promotion waiting for approval and a firing alert, served with
    sign-in on; the approval was requested by ``ana`` (an approver), ``bo`` is an operator."""
    frame, target = telco
    with EventLog(tmp_path / "scratch-events") as events:
        approval = pending_approval(workspace, events, (frame.iloc[:1500], target.iloc[:1500]))
    alert = sync_alerts(workspace, "churn", [PAGE], T0).fired[0]
    running = Server(
        workspace.settings.workspace, workspace.settings.database_url, insecure_local=False
    )
    running.start()
    yield running, approval, alert.id
    running.close()


def state(workspace: Steward) -> dict[str, Any]:
    """What an attack must not change."""
    with workspace.store.read() as session:
        audit = session.scalar(select(func.count()).select_from(AuditRow))
        suspensions = session.scalar(select(func.count()).select_from(SuspensionRow))
        decisions = session.scalar(select(func.count()).select_from(ReviewDecisionRow))
    return {
        "champion": workspace.version("churn", "champion").version,
        "approvals": [(a.id, a.state) for a in list_approvals(workspace, state="all")],
        "alerts": [(a.id, a.state) for a in list_alerts(workspace)],
        "suspensions": suspensions,
        "decisions": decisions,
        "audit": audit,
    }


@pytest.mark.slow
def test_attacks_on_a_served_workspace_are_refused_and_change_nothing(
    guarded: Any, workspace: Steward
) -> None:
    server, approval, alert = guarded
    # The requester of the approval is the local user (the playbook ran as them): make them an
    # approver with a token, to try approving their own request.
    requester = list_approvals(workspace)[0].requested_by
    add_identity(workspace, requester, Role.APPROVER)
    own = create_token(workspace, requester, expires_in=timedelta(hours=1)).secret
    add_identity(workspace, "bo", Role.OPERATOR)
    operator = create_token(workspace, "bo", expires_in=timedelta(hours=1)).secret
    before = state(workspace)
    url = server.url
    mutations = [
        f"/v1/approvals/{approval}:approve",
        f"/v1/approvals/{approval}:reject",
        f"/v1/alerts/{alert}:acknowledge",
        f"/v1/alerts/{alert}:resolve",
        "/v1/systems/churn:suspend",
        "/v1/systems/churn:resume",
        "/v1/systems/churn/reviews/p-1",
        "/v1/systems/churn/outcomes",
        "/v1/systems/churn/predict",
        "/v1/systems/churn/predictions:log",
    ]
    refused: list[tuple[str, int]] = []
    with httpx.Client(timeout=30) as http:
        # 1. Anonymous: every mutation and every read of customers' data is a 401.
        for path in mutations:
            answer = http.post(url + path, json={"mode": "review"})
            refused.append((f"anonymous POST {path}", answer.status_code))
            assert answer.status_code == 401, (path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
        for path in ("/v1/systems/churn/reviews", "/v1/approvals", "/"):
            answer = http.get(url + path)
            refused.append((f"anonymous GET {path}", answer.status_code))
            assert answer.status_code == 401, path
        # 2. A cross-site form POST (the empty form of evil.example), with or without a cookie.
        session = login_link(workspace, requester)
        for cookies in ({}, session_cookie(session.secret)):
            answer = http.post(
                f"{url}/v1/approvals/{approval}:approve",
                headers={
                    "Origin": EVIL,
                    "Content-Type": "application/x-www-form-urlencoded",
                    **cookies,
                },
                content=b"",
            )
            refused.append(("cross-site form POST", answer.status_code))
            assert answer.status_code == 415, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
        # A JSON POST riding a session cookie without the CSRF token.
        opened = http.get(f"{url}/ui/login", params={"token": session.secret})
        assert opened.status_code == 303
        cookie = session_cookie(opened.cookies["steward_session"])
        http.cookies.clear()
        answer = http.post(f"{url}/v1/alerts/{alert}:resolve", json={}, headers=cookie)
        refused.append(("session POST without CSRF token", answer.status_code))
        assert answer.status_code == 403 and "CSRF" in answer.json()["detail"]
        # 3. A foreign Host header (DNS rebinding), even with a valid token.
        answer = http.get(f"{url}/v1/approvals", headers={"Host": "evil.example", **bearer(own)})
        refused.append(("Host: evil.example", answer.status_code))
        assert answer.status_code == 400 and "evil.example" in answer.json()["detail"]
        # 4. Self-approval on a high-risk system (four eyes), and an operator approving.
        answer = http.post(f"{url}/v1/approvals/{approval}:approve", json={}, headers=bearer(own))
        refused.append(("self-approval", answer.status_code))
        assert answer.status_code == 403 and "four eyes" in answer.json()["detail"]
        answer = http.post(
            f"{url}/v1/approvals/{approval}:approve", json={}, headers=bearer(operator)
        )
        refused.append(("operator approving", answer.status_code))
        assert answer.status_code == 403 and "approver" in answer.json()["detail"]
        # 5. A revoked token and a forged one.
        revoke_token(
            workspace, create_token(workspace, "bo", expires_in=timedelta(hours=1)).info.key
        )
        forged = operator[:-6] + "AAAAAA"
        answer = http.post(f"{url}/v1/alerts/{alert}:resolve", json={}, headers=bearer(forged))
        refused.append(("forged token", answer.status_code))
        assert answer.status_code == 401
    after = state(workspace)
    # What the test itself did is all the audit log gained: no attack wrote anything.
    with workspace.store.read() as session:
        added = session.scalars(
            select(AuditRow.action).where(AuditRow.id > before["audit"]).order_by(AuditRow.id)
        ).all()
    assert added == ["login.create", "session.create", "api.create", "token.revoke"]
    assert {**after, "audit": 0} == {**before, "audit": 0}
    assert all(code in (400, 401, 403, 415) for _, code in refused)


@pytest.mark.slow
def test_a_login_link_opens_a_strict_session_once(guarded: Any, workspace: Steward) -> None:
    server, _, alert = guarded
    add_identity(workspace, "cy", Role.OPERATOR)
    link = login_link(workspace, "cy")
    with httpx.Client(timeout=30) as http:
        opened = http.get(f"{server.url}/ui/login", params={"token": link.secret})
        assert opened.status_code == 303 and opened.headers["location"] == "/"
        cookies = opened.headers.get_list("set-cookie")
        set_session = next(c for c in cookies if c.startswith("steward_session="))
        assert "HttpOnly" in set_session and "SameSite=strict" in set_session
        assert "Secure" not in set_session  # plain HTTP on loopback; set behind TLS
        secret = opened.cookies["steward_session"]
        assert opened.cookies["steward_csrf"] == csrf_token(secret)
        http.cookies.clear()
        page = http.get(f"{server.url}/", headers=session_cookie(secret))
        assert page.status_code == 200 and "Steward" in page.text
        again = http.get(f"{server.url}/ui/login", params={"token": link.secret})
        assert again.status_code == 400 and "used or expired" in again.text
        whoami = http.get(f"{server.url}/v1/whoami", headers=session_cookie(secret))
        assert whoami.json() == {
            "name": "cy",
            "role": "operator",
            "via": "session",
            "key": whoami.json()["key"],
        }
        done = http.post(
            f"{server.url}/v1/alerts/{alert}:acknowledge",
            json={},
            headers={"X-CSRF-Token": csrf_token(secret), **session_cookie(secret)},
        )
        assert done.status_code == 200 and done.json()["acknowledged_by"] == "cy"
        out = http.post(
            f"{server.url}/ui/logout",
            headers={"X-CSRF-Token": csrf_token(secret), **session_cookie(secret)},
        )
        assert out.status_code == 204
        ended = http.get(f"{server.url}/v1/whoami", headers=session_cookie(secret))
        # The server caches a credential for a few seconds at most.
        assert ended.status_code in (200, 401)


def test_insecure_local_is_refused_off_loopback(workspace: Steward) -> None:
    base = ["--workspace", str(workspace.settings.workspace)]
    for host in ("0.0.0.0", "192.168.1.20", "example.com"):
        result = CliRunner().invoke(cli, [*base, "serve", "--host", host, "--insecure-local"])
        assert result.exit_code != 0
        assert "loopback" in result.output and host in result.output


def test_tokens_cli_shows_a_token_once_and_stores_only_its_hash(workspace: Steward) -> None:
    base = [
        "--workspace",
        str(workspace.settings.workspace),
        "--database-url",
        workspace.settings.database_url,
    ]
    runner = CliRunner()
    added = runner.invoke(cli, [*base, "users", "add", "ci-bot", "--role", "client", "--service"])
    assert added.exit_code == 0, added.output
    made = runner.invoke(cli, [*base, "tokens", "create", "ci-bot", "--expires", "7d"])
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip()
    assert secret.startswith("stw_")
    listed = runner.invoke(cli, [*base, "tokens", "list", "--format", "json"])
    assert secret not in listed.output and secret.split("_", 2)[2] not in listed.output
    with workspace.store.read() as session:
        dumped = " ".join(str(row) for row in session.execute(select(AuditRow.details)).all())
    assert secret.split("_", 2)[2] not in dumped
    too_high = runner.invoke(cli, [*base, "tokens", "create", "ci-bot", "--role", "admin"])
    assert too_high.exit_code != 0 and "above 'ci-bot'" in too_high.output
    too_long = runner.invoke(cli, [*base, "tokens", "create", "ci-bot", "--expires", "400d"])
    assert too_long.exit_code != 0 and "at most 366 days" in too_long.output
    key = secret.split("_", 2)[1]
    revoked = runner.invoke(cli, [*base, "tokens", "revoke", key])
    assert revoked.exit_code == 0 and key in revoked.output
    assert runner.invoke(cli, [*base, "tokens", "list", "--format", "json"]).output.strip() == "[]"


def test_host_names_are_checked_except_on_the_public_probes(workspace: Steward) -> None:
    from tests.test_routes import call as in_process

    app = create_app(workspace, allowed_hosts=["steward.example.com"])
    add_identity(workspace, "vi", Role.VIEWER)
    token = create_token(workspace, "vi", expires_in=timedelta(hours=1)).secret

    async def send(host: str, path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
            return await client.get(path, headers=bearer(token))

    assert asyncio.run(send("steward.example.com", "/v1/alerts")).status_code == 200
    refused = asyncio.run(send("localhost", "/v1/alerts"))
    assert refused.status_code == 400
    assert "'localhost' is not one this server answers to" in refused.json()["detail"]
    assert asyncio.run(send("10.0.0.7:8000", "/healthz")).status_code == 200
    # The default: loopback names only.
    assert in_process(create_app(workspace), "GET", "/v1/alerts", token).status_code == 200


def test_state_changing_form_bodies_are_refused_before_any_check(workspace: Steward) -> None:
    app = create_app(workspace, insecure_local=True)  # even with every caller an admin

    async def send(kind: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await client.post(
                "/v1/systems/churn:suspend", content=b"mode=review", headers={"Content-Type": kind}
            )

    for kind in (
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain",
    ):
        answer = asyncio.run(send(kind))
        assert answer.status_code == 415, kind
        assert "send JSON" in answer.json()["detail"]
    assert suspension_of(workspace) is None


def suspension_of(workspace: Steward) -> Any:
    from steward.delivery.suspension import current_suspension

    return current_suspension(workspace, "churn")


def test_a_protected_alias_moves_only_through_an_approval_or_a_rollback(
    workspace: Steward, telco: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    import yaml

    from steward.errors import ForbiddenError
    from steward.loop import promotion

    frame, target = telco
    with EventLog(tmp_path / "scratch-events") as events:
        # champion set once (v1); the better v2 waits for an approval.
        approval = pending_approval(workspace, events, (frame.iloc[:1500], target.iloc[:1500]))
    config = yaml.safe_load(workspace.settings.config_path.read_text())
    config["systems"][0]["risk_tier"] = "medium"  # protection alone, not the risk tier
    config["systems"][0]["protected_aliases"] = ["champion"]
    workspace.settings.config_path.write_text(yaml.safe_dump(config))
    workspace.apply()
    with pytest.raises(ForbiddenError, match="'champion' of 'churn' is protected"):
        workspace.move_alias("churn", "champion", 2)
    with pytest.raises(ForbiddenError, match="protected"):
        workspace.move_alias("churn", "champion", None)
    workspace.move_alias("churn", "champion", 1)  # where it already is: no move, allowed
    with pytest.raises(ForbiddenError, match="four eyes"):
        promotion.approve(workspace, approval, workspace.actor)
    assert workspace.version("churn", "champion").version == 1
    promotion.approve(workspace, approval, "ana", "checked")
    assert workspace.version("churn", "champion").version == 2
    workspace.rollback("churn", "v2 misbehaves")  # the emergency brake stays
    assert workspace.version("churn", "champion").version == 1
    # Unprotected aliases move freely.
    workspace.move_alias("churn", "challenger", 1)
    assert workspace.version("churn", "challenger").version == 1


def test_steward_settings_never_prints_a_secret(workspace: Steward) -> None:
    result = CliRunner().invoke(
        cli,
        ["--workspace", str(workspace.settings.workspace), "settings"],
        env={"STEWARD_OIDC_CLIENT_SECRET": "s3cret-value-123"},
    )
    assert result.exit_code == 0, result.output
    assert "s3cret-value-123" not in result.output and "(set, hidden)" in result.output
