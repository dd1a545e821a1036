"""Health, readiness and Prometheus metrics: public, read-only, for probes and scrapers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from steward.web.deps import MetricsDep, StewardDep
from steward.web.roles import Role, RoleRoute, requires

__all__ = ["healthz", "prometheus", "readyz", "router"]

router = APIRouter(route_class=RoleRoute, tags=["health"])


@router.get("/healthz", dependencies=[requires(Role.ANONYMOUS)])
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", dependencies=[requires(Role.ANONYMOUS)])
def readyz(steward: StewardDep) -> JSONResponse:
    """The store answers and the event log is writable."""
    try:
        steward.systems()
    except Exception as error:  # any store failure means not ready
        return JSONResponse({"status": "unavailable", "detail": str(error)}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/metrics", dependencies=[requires(Role.ANONYMOUS)])
def prometheus(metrics: MetricsDep) -> Response:
    """This process's Prometheus metrics: requests, latency, predictions, contract violations."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
