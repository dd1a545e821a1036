"""HTTP for the loop: alerts (list, acknowledge, resolve) and SLO status.

Errors are problem+json like the rest of the API: an unknown alert id is a 404 naming it,
acknowledging or resolving a resolved alert a 409.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from steward.loop import alerts, notify
from steward.monitoring import slo
from steward.store import MAX_ROW_ID
from steward.web.auth import CallerDep
from steward.web.deps import EventsDep, StewardDep
from steward.web.roles import Role, RoleRoute, requires

__all__ = [
    "AlertId",
    "ResolveRequest",
    "acknowledge",
    "list_alerts",
    "resolve",
    "router",
    "slo_status",
]


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=2000)


AlertId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="The alert's id.")]


router = APIRouter(route_class=RoleRoute, tags=["alerts"])


@router.get("/v1/alerts", dependencies=[requires(Role.VIEWER)])
def list_alerts(
    steward: StewardDep,
    system: str | None = None,
    state: Literal["firing", "acknowledged", "resolved", "open"] | None = None,
    limit: int = Query(default=200, ge=1, le=1000),
) -> dict[str, Any]:
    """Alerts, newest first, each with its notifications (delivered or failed)."""
    found = alerts.list_alerts(steward, system=system, state=state, limit=limit)
    sent = notify.list_notifications(steward, alert_ids=[alert.id for alert in found])
    return {
        "alerts": [
            {
                **alert.to_dict(),
                "notifications": [n.to_dict() for n in sent if n.alert_id == alert.id],
            }
            for alert in found
        ]
    }


@router.post("/v1/alerts/{alert_id}:acknowledge", dependencies=[requires(Role.OPERATOR)])
def acknowledge(alert_id: AlertId, steward: StewardDep, caller: CallerDep) -> dict[str, Any]:
    """The caller is on it; the alert stays open until its rule stops breaching."""
    return alerts.acknowledge(steward, alert_id, caller.actor).to_dict()


@router.post("/v1/alerts/{alert_id}:resolve", dependencies=[requires(Role.OPERATOR)])
def resolve(
    alert_id: AlertId, steward: StewardDep, caller: CallerDep, body: ResolveRequest | None = None
) -> dict[str, Any]:
    """Close an alert by hand, with a note for the record."""
    note = body.note if body else ""
    return alerts.resolve(steward, alert_id, caller.actor, note).to_dict()


@router.get("/v1/systems/{system}/slos", dependencies=[requires(Role.VIEWER)])
def slo_status(system: str, steward: StewardDep, events: EventsDep) -> dict[str, Any]:
    """Every SLO of the system evaluated now (not stored): SLI, budget, burn rates, alerts."""
    steward.system(system)
    statuses = slo.evaluate_all(steward, events, system, store=False)
    return {"system": system, "slos": [status.to_dict() for status in statuses]}
