"""Health, readiness and Prometheus metrics: public, read-only, for probes and scrapers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from steward.web.deps import EventsDep, MetricsDep, StewardDep
from steward.web.problems import RETRY_AFTER_SECONDS
from steward.web.roles import Role, RoleRoute, requires

__all__ = ["healthz", "prometheus", "readyz", "router"]

router = APIRouter(route_class=RoleRoute, tags=["health"])


@router.get("/healthz", dependencies=[requires(Role.ANONYMOUS)])
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", dependencies=[requires(Role.ANONYMOUS)])
def readyz(request: Request, steward: StewardDep, events: EventsDep) -> JSONResponse:
    """The store answers and the event log can write (a failed writer is retried here); ``loop``
    says whether this server runs the loop (``leader``), another does (``standby``), or it is off.

    With events on object storage, ``object_store`` tells its URL, its last failure and the bytes
    waiting for upload: ``degraded`` (200) while appends still fit on local disk, 503 once they
    do not."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    try:
        steward.systems()
    except Exception as error:  # any store failure means not ready
        down = {"status": "unavailable", "cause": "store", "detail": str(error)}
        return JSONResponse(down, status_code=503, headers=headers)
    failure = events.health()
    store = events.object_store()
    if failure is not None:
        detail: dict[str, Any] = {"status": "unavailable", "cause": "event log", "detail": failure}
        if store is not None:
            detail["object_store"] = store
        return JSONResponse(detail, status_code=503, headers=headers)
    scheduler = getattr(request.app.state, "scheduler", None)
    answer: dict[str, Any] = {"status": "ok", "loop": scheduler.role if scheduler else "off"}
    if store is not None:  # an object store that fails while appends still fit on local disk
        answer["object_store"] = store
        if store["failure"] is not None:
            answer["status"] = "degraded"
    return JSONResponse(answer)


@router.get("/metrics", dependencies=[requires(Role.ANONYMOUS)])
def prometheus(metrics: MetricsDep) -> Response:
    """This process's Prometheus metrics: requests, latency, predictions, contract violations."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
