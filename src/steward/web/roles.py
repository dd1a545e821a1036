"""The role each route needs, and the check that enforces it on every request.

Roles are ordered (``steward.governance.access.Role``): a caller holding a role may do whatever a
lower role may. ``anonymous`` is the public role, for read-only health, readiness, metrics, the API
description, the dashboard's static files and the login link; every other route needs at least
``viewer``.

Each route declares its role with ``dependencies=[requires(Role.OPERATOR)]`` on a router built with
``route_class=RoleRoute``, which also publishes the role in OpenAPI as ``x-steward-role`` and the
security schemes the route accepts. Routes FastAPI or Starlette add themselves (the OpenAPI
document, ``/docs``, a static mount) are declared with ``declare(route, role)``.
``RoleRequirement`` runs first on every request of its route: no credential is a 401, a role too
low a 403, both ``application/problem+json``. ``tests/test_routes.py`` keeps the table of every
route's role and proves each is enforced.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, params
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute

from steward.errors import ConfigError, ForbiddenError, UnauthenticatedError
from steward.governance.access import Role
from steward.web.auth import SESSION_COOKIE, caller

__all__ = [
    "OPENAPI_KEY",
    "SECURITY_SCHEMES",
    "Role",
    "RoleRequirement",
    "RoleRoute",
    "check_every_route_declares_a_role",
    "declare",
    "declare_framework_routes",
    "declared_roles",
    "publish_security_schemes",
    "requires",
    "routes_without_one_role",
]

OPENAPI_KEY = "x-steward-role"
#: The credentials a route that needs a role accepts, as OpenAPI security schemes.
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token from `steward tokens create` (stw_...).",
    },
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "The dashboard's session, opened by a login link; requests that change "
        "state also send the X-CSRF-Token header.",
    },
}
_ATTRIBUTE = "steward_role"


@dataclass(frozen=True)
class RoleRequirement:
    """The dependency a route lists to declare, and enforce, its role."""

    role: Role

    async def __call__(self, request: Request) -> None:
        """Let the request through if its caller holds ``role``; 401 or 403 otherwise."""
        if self.role is Role.ANONYMOUS:
            return
        identity = await run_in_threadpool(caller, request)
        request.state.identity = identity
        if identity.role is Role.ANONYMOUS:
            raise UnauthenticatedError(
                f"{request.method} {request.url.path} needs the {self.role.label} role; send "
                "'Authorization: Bearer <token>' (`steward tokens create`) or sign in with the "
                "link `steward serve` printed"
            )
        if identity.role < self.role:
            raise ForbiddenError(
                f"{identity.name} holds the {identity.role.label} role; {request.method} "
                f"{request.url.path} needs {self.role.label} or above"
            )


def requires(role: Role) -> params.Depends:
    """Declare and enforce that a route needs ``role``: put the result in its ``dependencies=``."""
    return params.Depends(RoleRequirement(role))


def declare(route: BaseRoute, role: Role) -> BaseRoute:
    """Declare the role of a route that takes no dependencies (a mount, a framework route)."""
    setattr(route, _ATTRIBUTE, role)
    return route


def declared_roles(route: Any) -> tuple[Role, ...]:
    """The roles ``route`` declares (one, if it is declared right), from its dependencies or mark.

    ``route`` is a route or a ``fastapi.routing.RouteContext`` from ``iter_route_contexts``; for a
    context, the dependencies are the effective ones (the including routers' and the route's).
    """
    original = getattr(route, "original_route", route)
    dependencies: Iterable[Any] = getattr(route, "dependencies", None) or ()
    found = [
        item.dependency.role
        for item in dependencies
        if isinstance(getattr(item, "dependency", None), RoleRequirement)
    ]
    marked = getattr(original, _ATTRIBUTE, None)
    if isinstance(marked, Role):
        found.append(marked)
    return tuple(found)


class RoleRoute(APIRoute):
    """An ``APIRoute`` that publishes its declared role in OpenAPI as ``x-steward-role``."""

    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        roles = declared_roles(self)
        if len(roles) > 1:
            raise ValueError(
                f"route {path!r} declares {len(roles)} roles "
                f"({', '.join(role.label for role in roles)}); keep the one it needs"
            )
        if roles:
            extra: dict[str, Any] = {OPENAPI_KEY: roles[0].label}
            if roles[0] is not Role.ANONYMOUS:
                extra["security"] = [{scheme: []} for scheme in SECURITY_SCHEMES]
            self.openapi_extra = {**(self.openapi_extra or {}), **extra}


def declare_framework_routes(app: FastAPI) -> None:
    """Declare FastAPI's own routes public: the OpenAPI document and the pages that show it."""
    urls = (app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
    public = {url for url in urls if url}
    for route in app.routes:
        if getattr(route, "path", None) in public and not isinstance(route, APIRoute):
            declare(route, Role.ANONYMOUS)


def publish_security_schemes(app: FastAPI) -> None:
    """Add ``SECURITY_SCHEMES`` to the app's OpenAPI document (each route names those it takes)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def routes_without_one_role(app: FastAPI) -> list[str]:
    """``"GET /path (none)"`` for each route of ``app`` that declares no role, or several."""
    wrong = []
    for context in iter_route_contexts(app.routes):
        roles = declared_roles(context)
        if len(roles) != 1:
            methods = ",".join(sorted(getattr(context, "methods", None) or ())) or "ANY"
            labels = ", ".join(role.label for role in roles) or "none"
            wrong.append(f"{methods} {context.path_format} ({labels})")
    return wrong


def check_every_route_declares_a_role(app: FastAPI) -> None:
    """Refuse to build an app with a route that declares no role: it would be open to anyone."""
    wrong = routes_without_one_role(app)
    if wrong:
        raise ConfigError(
            "every route must declare exactly one role, e.g. "
            "dependencies=[steward.web.roles.requires(Role.VIEWER)]; these do not: "
            + "; ".join(wrong)
        )
