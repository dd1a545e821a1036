"""Every route of the app declares the one role it needs, and the table below is that list.

A new route without a role, a route that declares two, a changed role or a route missing from the
table fails here with the route named. Changing a role is a decision: update ``EXPECTED`` with it.
Roles are only declared today (``steward.web.roles``); enforcement comes with authentication.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from steward import Steward
from steward.data.events import EventLog
from steward.web import create_app
from steward.web.roles import OPENAPI_KEY, Role, RoleRoute, declared_roles, requires

ANONYMOUS, VIEWER, CLIENT = Role.ANONYMOUS, Role.VIEWER, Role.CLIENT
OPERATOR, APPROVER = Role.OPERATOR, Role.APPROVER

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
    # Inference and what clients send: client.
    ("POST", "/v1/systems/{system}/predict"): CLIENT,
    ("POST", "/v1/systems/{system}/outcomes"): CLIENT,
    ("POST", "/v1/systems/{system}/predictions:log"): CLIENT,
    ("POST", "/v2/models/{name}/infer"): CLIENT,
    # Reads of metadata, results, queues and history: viewer.
    ("GET", "/v2"): VIEWER,
    ("GET", "/v2/models/{name}"): VIEWER,
    ("GET", "/v2/models/{name}/ready"): VIEWER,
    ("GET", "/v1/alerts"): VIEWER,
    ("GET", "/v1/systems/{system}/slos"): VIEWER,
    ("GET", "/v1/systems/{system}/reviews"): VIEWER,
    ("GET", "/v1/systems/{system}/suspension"): VIEWER,
    ("GET", "/v1/systems/{system}/actions"): VIEWER,
    ("GET", "/v1/approvals"): VIEWER,
    ("GET", "/"): VIEWER,
    ("GET", "/ui/systems/{name}"): VIEWER,
    ("GET", "/ui/systems/{name}/drift/cell"): VIEWER,
    ("GET", "/ui/systems/{name}/versions"): VIEWER,
    ("GET", "/ui/systems/{name}/versions/{version}"): VIEWER,
    ("GET", "/ui/systems/{name}/versions/{version}/card"): VIEWER,
    ("GET", "/ui/systems/{name}/reviews"): VIEWER,
    ("GET", "/ui/history"): VIEWER,
    # Acting on alerts, reviews and suspensions: operator.
    ("POST", "/v1/alerts/{alert_id}:acknowledge"): OPERATOR,
    ("POST", "/v1/alerts/{alert_id}:resolve"): OPERATOR,
    ("POST", "/v1/systems/{system}/reviews/{prediction_id}"): OPERATOR,
    ("POST", "/v1/systems/{system}:suspend"): OPERATOR,
    ("POST", "/v1/systems/{system}:resume"): OPERATOR,
    # Deciding a promotion: approver.
    ("POST", "/v1/approvals/{approval_id}:approve"): APPROVER,
    ("POST", "/v1/approvals/{approval_id}:reject"): APPROVER,
}

READ_ONLY = {"GET", "HEAD"}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    steward = Steward.open(tmp_path / "workspace")
    steward.init()
    with EventLog(tmp_path / "events") as events:
        built = create_app(steward, events=events)
        yield built
        built.state.service.close()
    steward.close()


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
        if method not in READ_ONLY and roles and roles[0] <= Role.VIEWER
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


def test_a_route_cannot_declare_two_roles() -> None:
    router = APIRouter(route_class=RoleRoute)
    with pytest.raises(ValueError, match="declares 2 roles"):

        @router.post("/twice", dependencies=[requires(Role.CLIENT), requires(Role.ADMIN)])
        def twice() -> None:
            return None
