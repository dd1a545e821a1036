"""The roles the HTTP API will ask for, and how each route declares the one it needs.

Roles are ordered: a caller holding a role may do whatever a lower role may. ``anonymous`` is the
public role, for read-only health, readiness, metrics, the API description and the dashboard's
static files; every other route needs at least ``viewer``.

Each route declares its role with ``dependencies=[requires(Role.OPERATOR)]`` on a router built with
``route_class=RoleRoute``, which also publishes the role in OpenAPI as ``x-steward-role``. Routes
FastAPI or Starlette add themselves (the OpenAPI document, ``/docs``, a static mount) are declared
with ``declare(route, role)``. Today the declaration is only recorded: every request goes through,
as the API has no login yet. Authentication and enforcement come in a later change, which only has
to make ``RoleRequirement.__call__`` check the caller's role; ``tests/test_routes.py`` keeps the
table of every route's role.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, params
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

__all__ = [
    "OPENAPI_KEY",
    "Role",
    "RoleRequirement",
    "RoleRoute",
    "declare",
    "declare_framework_routes",
    "declared_roles",
    "requires",
]

OPENAPI_KEY = "x-steward-role"
_ATTRIBUTE = "steward_role"


class Role(enum.IntEnum):
    """Who may call a route, lowest first; each role may do what the roles below it may."""

    ANONYMOUS = 0
    VIEWER = 1
    CLIENT = 2
    OPERATOR = 3
    APPROVER = 4
    ADMIN = 5

    @property
    def label(self) -> str:
        """The role's name as published in OpenAPI and in messages: ``operator``."""
        return self.name.lower()


@dataclass(frozen=True)
class RoleRequirement:
    """The dependency a route lists to declare its role.

    It lets every request through: the API has no authentication yet. A later change makes this
    call read the caller's role and refuse one below ``role``; the routes need no change then.
    """

    role: Role

    async def __call__(self) -> None:
        """Let the request through (authentication and enforcement come in a later change)."""
        return None


def requires(role: Role) -> params.Depends:
    """Declare that a route needs ``role``: put the result in the route's ``dependencies=``.

    Only recorded today (on the route, and in OpenAPI as ``x-steward-role`` when the router uses
    ``RoleRoute``); every request goes through until authentication and enforcement arrive.
    """
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
            self.openapi_extra = {**(self.openapi_extra or {}), OPENAPI_KEY: roles[0].label}


def declare_framework_routes(app: FastAPI) -> None:
    """Declare FastAPI's own routes public: the OpenAPI document and the pages that show it."""
    urls = (app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
    public = {url for url in urls if url}
    for route in app.routes:
        if getattr(route, "path", None) in public and not isinstance(route, APIRoute):
            declare(route, Role.ANONYMOUS)
