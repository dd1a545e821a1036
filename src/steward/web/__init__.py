"""HTTP: the FastAPI application, its error shape, metrics, roles and the Open Inference Protocol."""

from steward.web.app import create_app
from steward.web.deps import get_events, get_metrics, get_service, get_workspace
from steward.web.roles import (
    Role,
    RoleRequirement,
    RoleRoute,
    declare,
    declared_roles,
    requires,
)

__all__ = [
    "Role",
    "RoleRequirement",
    "RoleRoute",
    "create_app",
    "declare",
    "declared_roles",
    "get_events",
    "get_metrics",
    "get_service",
    "get_workspace",
    "requires",
]
