"""Every route of the app declares the one role it needs, the table below is that list, and every
route enforces it.

A new route without a role, a route that declares two, a changed role or a route missing from the
table fails here with the route named; ``create_app`` itself refuses to build an app with a route
that declares no role. Changing a role is a decision: update ``EXPECTED`` with it. Each route is
then called anonymously (401 problem+json), with a token one role too low (403 problem+json), and
with a token of its role (neither).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from steward import Steward
from steward.data.events import EventLog
from steward.errors import ConfigError
from steward.governance.access import add_identity, create_token
from steward.plugins import hookimpl, plugin_manager
from steward.web import create_app
from steward.web.roles import OPENAPI_KEY, Role, RoleRoute, declared_roles, requires

ANONYMOUS, VIEWER, CLIENT = Role.ANONYMOUS, Role.VIEWER, Role.CLIENT
OPERATOR, APPROVER, ADMIN = Role.OPERATOR, Role.APPROVER, Role.ADMIN

# (method, path) -> the role the route declares. HEAD goes with GET and is not listed.
EXPECTED: dict[tuple[str, str], Role] = {
    # FastAPI's API description and the dashboard's static files: public.
    ("GET", "/openapi.json"): ANONYMOUS,
    ("GET", "/docs"): ANONYMOUS,
    ("GET", "/docs/oauth2-redirect"): ANONYMOUS,
    ("GET", "/redoc"): ANONYMOUS,
    ("GET", "/ui/static/{path}"): ANONYMOUS,
    # Health, readiness, metrics: public, read-only.
    ("GET", "/healthz"): ANONYMOUS,
    ("GET", "/readyz"): ANONYMOUS,
    ("GET", "/metrics"): ANONYMOUS,
    ("GET", "/v2/health/live"): ANONYMOUS,
    ("GET", "/v2/health/ready"): ANONYMOUS,
    # Spending a one-time login link opens a session: it is how a browser becomes someone.
    ("GET", "/ui/login"): ANONYMOUS,
    # Sign-in through an identity provider (OIDC): going there, and coming back with its answer.
    ("GET", "/ui/oidc/login"): ANONYMOUS,
    ("GET", "/ui/oidc/callback"): ANONYMOUS,
    # Inference and what clients send: client.
    ("POST", "/v1/systems/{system}/predict"): CLIENT,
    ("POST", "/v1/systems/{system}/outcomes"): CLIENT,
    ("POST", "/v1/systems/{system}/predictions:log"): CLIENT,
    ("POST", "/v1/systems/{system}/llm-calls:log"): CLIENT,
    ("POST", "/v1/traces"): CLIENT,
    ("POST", "/v2/models/{name}/infer"): CLIENT,
    ("POST", "/v2/models/{name}/versions/{version}/infer"): CLIENT,
    # Reads of metadata, results, queues and history: viewer.
    ("GET", "/v2"): VIEWER,
    ("GET", "/v2/models/{name}"): VIEWER,
    ("GET", "/v2/models/{name}/ready"): VIEWER,
    ("GET", "/v2/models/{name}/versions/{version}"): VIEWER,
    ("GET", "/v2/models/{name}/versions/{version}/ready"): VIEWER,
    ("GET", "/v1/alerts"): VIEWER,
    ("GET", "/v1/systems/{system}/slos"): VIEWER,
    ("GET", "/v1/systems/{system}/reviews"): VIEWER,
    ("GET", "/v1/systems/{system}/suspension"): VIEWER,
    ("GET", "/v1/systems/{system}/actions"): VIEWER,
    ("GET", "/v1/approvals"): VIEWER,
    ("GET", "/v1/whoami"): VIEWER,
    ("GET", "/v1/systems/{system}/prompts"): VIEWER,
    ("GET", "/v1/systems/{system}/prompts/{prompt}"): VIEWER,
    ("GET", "/v1/prompts/{prompt}"): VIEWER,
    ("POST", "/v1/systems/{system}/prompts/{prompt}:render"): CLIENT,
    ("GET", "/v1/systems/{system}/prompts/{prompt}/versions"): VIEWER,
    ("GET", "/v1/systems/{system}/prompts/{prompt}/history"): VIEWER,
    ("GET", "/v1/evals"): VIEWER,
    ("GET", "/v1/systems/{system}/llm-calls"): VIEWER,
    ("GET", "/v1/evals/{run_id}"): VIEWER,
    # Ending one's own session changes nothing but the caller's own sign-in.
    ("POST", "/ui/logout"): VIEWER,
    ("GET", "/"): VIEWER,
    ("GET", "/ui/systems/{name}"): VIEWER,
    ("GET", "/ui/systems/{name}/drift/cell"): VIEWER,
    ("GET", "/ui/systems/{name}/features/{column}"): VIEWER,
    ("GET", "/ui/systems/{name}/versions"): VIEWER,
    ("GET", "/ui/systems/{name}/versions/{version}"): VIEWER,
    ("GET", "/ui/systems/{name}/versions/{version}/card"): VIEWER,
    ("GET", "/ui/systems/{name}/reviews"): VIEWER,
    ("GET", "/ui/systems/{name}/prompts"): VIEWER,
    ("GET", "/ui/systems/{name}/llm"): VIEWER,
    ("GET", "/ui/systems/{name}/prompts/{prompt}/versions/{version}"): VIEWER,
    ("GET", "/ui/evals/{run_id}"): VIEWER,
    ("GET", "/ui/history"): VIEWER,
    # Acting on alerts, reviews and suspensions: operator.
    ("POST", "/v1/alerts/{alert_id}:acknowledge"): OPERATOR,
    ("POST", "/v1/alerts/{alert_id}:resolve"): OPERATOR,
    ("POST", "/v1/systems/{system}/reviews/{prediction_id}"): OPERATOR,
    ("POST", "/v1/systems/{system}:suspend"): OPERATOR,
    ("POST", "/v1/systems/{system}:resume"): OPERATOR,
    # Moving a prompt's labels: operator, like model aliases.
    ("PUT", "/v1/systems/{system}/prompts/{prompt}/labels/{label}"): OPERATOR,
    ("DELETE", "/v1/systems/{system}/prompts/{prompt}/labels/{label}"): OPERATOR,
    ("POST", "/v1/systems/{system}/prompts/{prompt}/labels/{label}:rollback"): OPERATOR,
    # Deciding a promotion: approver.
    ("POST", "/v1/approvals/{approval_id}:approve"): APPROVER,
    ("POST", "/v1/approvals/{approval_id}:reject"): APPROVER,
    # Erasing a subject's data everywhere: admin (it destroys data).
    ("POST", "/v1/erasures"): ADMIN,
}

READ_ONLY = {"GET", "HEAD"}
#: Routes that change only the caller's own session, which a viewer may do.
OWN_SESSION = {("POST", "/ui/logout")}
#: A value for each path parameter: enough to reach the route's role check.
PATH_VALUES = {
    "system": "churn",
    "name": "churn",
    "version": "1",
    "alert_id": "1",
    "approval_id": "1",
    "prediction_id": "p-1",
    "prompt": "answer",
    "label": "production",
    "run_id": "1",
    "path": "dashboard.css",
    "column": "tenure",
}


@pytest.fixture
def steward(tmp_path: Path) -> Iterator[Steward]:
    opened = Steward.open(tmp_path / "workspace")
    opened.init()
    yield opened
    opened.close()


@pytest.fixture
def app(steward: Steward, tmp_path: Path) -> Iterator[FastAPI]:
    with EventLog(tmp_path / "events") as events:
        built = create_app(steward, events=events)
        yield built
        built.state.service.close()


@pytest.fixture
def tokens(steward: Steward) -> dict[Role, str]:
    """An API token for each role but anonymous, each of its own identity."""
    made = {}
    for role in Role:
        if role is not Role.ANONYMOUS:
            add_identity(steward, f"holder-{role.label}", role)
            made[role] = create_token(
                steward, f"holder-{role.label}", expires_in=timedelta(hours=1)
            ).secret
    return made


def call(app: FastAPI, method: str, path: str, token: str | None) -> httpx.Response:
    """One request to ``app`` in process, JSON body on methods that change state."""
    concrete = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: PATH_VALUES[m[1]], path)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {} if method not in READ_ONLY else None

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await client.request(method, concrete, headers=headers, json=body)

    return asyncio.run(send())


def error_media_type(path: str) -> str:
    """problem+json, but on the Open Inference Protocol's routes its own ``{"error": ...}``."""
    return "application/json" if path.startswith("/v2") else "application/problem+json"


def guarded(app: FastAPI) -> list[tuple[str, str, Role]]:
    return [
        (method, path, roles[0])
        for method, path, roles, context in routes(app)
        if roles and roles[0] is not ANONYMOUS and not isinstance(context.original_route, Mount)
    ]


def routes(app: FastAPI) -> Iterator[tuple[str, str, tuple[Role, ...], Any]]:
    """(method, path, declared roles, route context) for every route, included routers walked."""
    for context in iter_route_contexts(app.routes):
        original = context.original_route
        if isinstance(original, Mount):
            # A mount answers whatever its app does; Steward mounts only static files (GET, HEAD).
            assert isinstance(original.app, StaticFiles), (
                f"{context.path_format} mounts {original.app!r}"
            )
            methods = {"GET"}
        else:
            methods = set(context.methods or ())
            if "GET" in methods:
                methods.discard("HEAD")
        assert methods, f"route {context.path_format} answers no method"
        for method in sorted(methods):
            yield method, str(context.path_format), declared_roles(context), context


def test_every_route_declares_exactly_one_role(app: FastAPI) -> None:
    wrong = [
        f"{method} {path}: {len(roles)} roles ({', '.join(r.label for r in roles) or 'none'})"
        for method, path, roles, _ in routes(app)
        if len(roles) != 1
    ]
    assert not wrong, (
        "each route needs exactly one role, e.g. requires(Role.VIEWER):\n" + "\n".join(wrong)
    )


def test_no_route_that_changes_state_is_anonymous_or_viewer(app: FastAPI) -> None:
    wrong = [
        f"{method} {path}: {roles[0].label}"
        for method, path, roles, _ in routes(app)
        if method not in READ_ONLY
        and (method, path) not in OWN_SESSION
        and roles
        and roles[0] <= Role.VIEWER
    ]
    assert not wrong, "routes that change state need client or above:\n" + "\n".join(wrong)


def test_routes_and_roles_match_the_table(app: FastAPI) -> None:
    found = {
        (method, path): ", ".join(role.label for role in roles) or "no role"
        for method, path, roles, _ in routes(app)
    }
    table = {key: role.label for key, role in EXPECTED.items()}
    problems = [
        f"not in EXPECTED: {m} {p} ({found[(m, p)]})"
        for m, p in sorted(found.keys() - table.keys())
    ]
    problems += [
        f"in EXPECTED but not served: {m} {p}" for m, p in sorted(table.keys() - found.keys())
    ]
    problems += [
        f"role changed: {m} {p}: EXPECTED says {table[(m, p)]}, the route declares {found[(m, p)]}"
        for m, p in sorted(found.keys() & table.keys())
        if found[(m, p)] != table[(m, p)]
    ]
    assert not problems, "update EXPECTED in tests/test_routes.py if intended:\n" + "\n".join(
        problems
    )


def test_openapi_publishes_each_operations_role(app: FastAPI) -> None:
    declared = {
        (method.lower(), path): roles[0].label
        for method, path, roles, context in routes(app)
        if isinstance(context.original_route, APIRoute) and context.include_in_schema and roles
    }
    published = {
        (method, path): operation.get(OPENAPI_KEY)
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
    }
    wrong = [
        f"{method.upper()} {path}: OpenAPI says {published.get((method, path))}, "
        f"the route declares {role}"
        for (method, path), role in sorted(declared.items())
        if published.get((method, path)) != role
    ]
    assert not wrong, "build routers with route_class=RoleRoute:\n" + "\n".join(wrong)
    assert published.keys() == declared.keys()


def test_roles_are_ordered() -> None:
    assert [role.label for role in sorted(Role)] == [
        "anonymous",
        "viewer",
        "client",
        "operator",
        "approver",
        "admin",
    ]


def test_every_guarded_route_refuses_an_anonymous_caller_with_401(app: FastAPI) -> None:
    checked = guarded(app)
    assert len(checked) >= 30
    wrong = []
    for method, path, _ in checked:
        answer = call(app, method, path, None)
        if (
            answer.status_code != 401
            or answer.headers["content-type"] != error_media_type(path)
            or not answer.headers.get("www-authenticate", "").startswith("Bearer")
        ):
            wrong.append(f"{method} {path}: {answer.status_code} {answer.text[:120]}")
    assert not wrong, "anonymous callers must get 401 problem+json:\n" + "\n".join(wrong)


def test_every_guarded_route_refuses_a_role_too_low_with_403(
    app: FastAPI, tokens: dict[Role, str]
) -> None:
    wrong = []
    for method, path, role in guarded(app):
        below = Role(role - 1)
        if below is ANONYMOUS:
            continue
        answer = call(app, method, path, tokens[below])
        problem = answer.json() if answer.headers["content-type"].endswith("json") else {}
        if path.startswith("/v2"):  # the Open Inference Protocol's own error shape
            problem = {"status": answer.status_code, "detail": problem.get("error", "")}
        if answer.status_code != 403 or problem.get("status") != 403:
            wrong.append(f"{method} {path} as {below.label}: {answer.status_code}")
        elif role.label not in problem["detail"]:
            wrong.append(f"{method} {path}: the 403 does not name the role: {problem['detail']}")
    assert not wrong, "a role too low must get 403 problem+json:\n" + "\n".join(wrong)


def test_every_guarded_route_lets_its_own_role_through(
    app: FastAPI, tokens: dict[Role, str]
) -> None:
    wrong = [
        f"{method} {path} as {role.label}: {answer.status_code} {answer.text[:120]}"
        for method, path, role in guarded(app)
        if (answer := call(app, method, path, tokens[role])).status_code in (401, 403, 500)
    ]
    assert not wrong, "\n".join(wrong)


def test_a_bad_credential_is_401_not_anonymous(app: FastAPI, tokens: dict[Role, str]) -> None:
    forged = tokens[Role.ADMIN][:-4] + "AAAA"
    for credential in (forged, "not-a-token", ""):
        answer = call(app, "GET", "/v1/alerts", credential or "x")
        assert answer.status_code == 401, (credential, answer.text)
        assert answer.json()["title"] == "Not signed in"
    # A public route stays public whatever is sent.
    assert call(app, "GET", "/healthz", forged).status_code == 200


def test_an_app_with_a_route_without_a_role_is_refused(steward: Steward, tmp_path: Path) -> None:
    class Extra:
        @hookimpl
        def steward_routers(self) -> list[APIRouter]:
            router = APIRouter(route_class=RoleRoute)

            @router.post("/v1/extra/open")
            def open_route() -> dict[str, str]:
                return {"open": "to anyone"}

            return [router]

    manager = plugin_manager()
    plugin = Extra()
    manager.register(plugin)
    try:
        with (
            EventLog(tmp_path / "extra-events") as events,
            pytest.raises(ConfigError, match=r"POST /v1/extra/open \(none\)"),
        ):
            create_app(steward, events=events)
    finally:
        manager.unregister(plugin)


def test_a_route_cannot_declare_two_roles() -> None:
    router = APIRouter(route_class=RoleRoute)
    with pytest.raises(ValueError, match="declares 2 roles"):

        @router.post("/twice", dependencies=[requires(Role.CLIENT), requires(Role.ADMIN)])
        def twice() -> None:
            return None
