"""Steward's own routers, registered through the ``steward_routers`` hook, in request-matching order.

A plugin adds routes the same way: a ``@hookimpl`` function ``steward_routers()`` returning FastAPI
routers whose routes each declare a role (``steward.web.roles.requires``); ``create_app`` includes
them after these.
"""

from __future__ import annotations

from fastapi import APIRouter

from steward.plugins import hookimpl, plugin_manager
from steward.web import dashboard
from steward.web.routes import (
    erasure,
    health,
    llm,
    logging,
    loop,
    oidc,
    oip,
    otlp,
    playbooks,
    predictions,
    prompts,
    review,
    session,
)

__all__ = ["ROUTERS", "available_routers", "steward_routers"]

# In the order they match requests (as they did when the routes were added one by one).
ROUTERS = (
    health.router,
    session.router,
    oidc.router,
    predictions.router,
    logging.router,
    oip.router,
    dashboard.router,
    loop.router,
    review.router,
    playbooks.router,
    prompts.router,
    llm.router,
    otlp.router,
    erasure.router,
)


@hookimpl
def steward_routers() -> list[APIRouter]:
    """The built-in routers, registered through the same hook as a plugin's."""
    return list(ROUTERS)


def available_routers() -> list[APIRouter]:
    """Every registered router, the built-ins first, each once."""
    found: list[APIRouter] = []
    for routers in reversed(plugin_manager().hook.steward_routers()):
        found += [router for router in routers if all(router is not seen for seen in found)]
    return found
