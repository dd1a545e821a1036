"""What routes take from the application: the workspace, the service, the event log, the metrics.

``create_app`` puts them on ``app.state`` once (``bind_state``); each route asks for them as FastAPI
dependencies (``steward: StewardDep``), so a route is a plain module-level function that a test can
call with whatever it likes. The getters are ``async`` so FastAPI calls them on the event loop
rather than through its thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request

from steward.core import Steward
from steward.data.events import EventLog
from steward.delivery.serving import Service
from steward.web.metrics import Metrics

__all__ = [
    "EventsDep",
    "MetricsDep",
    "ServiceDep",
    "StewardDep",
    "bind_state",
    "get_events",
    "get_metrics",
    "get_service",
    "get_workspace",
]


def bind_state(
    app: FastAPI,
    *,
    steward: Steward | None = None,
    service: Service | None = None,
    events: EventLog | None = None,
    metrics: Metrics | None = None,
) -> None:
    """Put the objects the routes read on ``app.state``; ``None`` leaves one as it is."""
    given = {"steward": steward, "service": service, "events": events, "metrics": metrics}
    for name, value in given.items():
        if value is not None:
            setattr(app.state, name, value)


async def get_workspace(request: Request) -> Steward:
    """The workspace the app serves."""
    workspace: Steward = request.app.state.steward
    return workspace


async def get_service(request: Request) -> Service:
    """The prediction service (champion, canary and shadow models, the durable log)."""
    service: Service = request.app.state.service
    return service


async def get_events(request: Request) -> EventLog:
    """The event log predictions, outcomes and decisions are written to."""
    events: EventLog = request.app.state.events
    return events


async def get_metrics(request: Request) -> Metrics:
    """The process's Prometheus metrics."""
    metrics: Metrics = request.app.state.metrics
    return metrics


StewardDep = Annotated[Steward, Depends(get_workspace)]
ServiceDep = Annotated[Service, Depends(get_service)]
EventsDep = Annotated[EventLog, Depends(get_events)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
