"""HTTP for the review queue and for suspending a system's automation (``steward.governance.review``).

Its ``router`` holds:

- ``GET /v1/systems/{system}/reviews``: the pending reviews, oldest first;
- ``POST /v1/systems/{system}/reviews/{prediction_id}``: approve (no ``action``, or the proposed one)
  or override (another ``action``), with an optional ``note``;
- ``POST /v1/systems/{system}:suspend``, ``POST /v1/systems/{system}:resume`` and
  ``GET /v1/systems/{system}/suspension``.

Decisions, suspending and resuming are the ``operator`` role's; the reads are the ``viewer``'s.

Errors are ``application/problem+json`` through the app's handlers (``web/problems.py``). Changes are
recorded under the caller's identity.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from steward.delivery import suspension as suspensions
from steward.governance import review
from steward.web.auth import CallerDep
from steward.web.deps import EventsDep, StewardDep
from steward.web.roles import Role, RoleRoute, requires

__all__ = [
    "DecideRequest",
    "ResumeRequest",
    "SuspendRequest",
    "decide",
    "list_reviews",
    "resume",
    "router",
    "suspend",
    "suspension",
]


class DecideRequest(BaseModel):
    """Approve with no ``action`` (or the proposed one); any other action overrides."""

    model_config = ConfigDict(extra="forbid")

    action: str | None = Field(default=None, max_length=100)
    note: str = Field(default="", max_length=10_000)


class SuspendRequest(BaseModel):
    """How to suspend: every decision to review, or every record to a fixed fallback action."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["review", "fallback"] = "review"
    fallback_action: str | None = Field(default=None, max_length=100)
    reason: str = Field(default="", max_length=10_000)


class ResumeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=10_000)


router = APIRouter(route_class=RoleRoute, tags=["review"])


@router.get("/v1/systems/{system}/reviews", dependencies=[requires(Role.VIEWER)])
def list_reviews(
    system: str,
    steward: StewardDep,
    events: EventsDep,
    limit: int = Query(default=100, ge=1, le=review.MAX_LIMIT),
) -> dict[str, Any]:
    """Predictions waiting for a person, oldest first, with inputs and why they wait."""
    items = review.pending_reviews(steward, events, system, limit=limit)
    return {"system": system, "reviews": [item.to_dict() for item in items]}


@router.post("/v1/systems/{system}/reviews/{prediction_id}", dependencies=[requires(Role.OPERATOR)])
def decide(
    system: str,
    prediction_id: str,
    body: DecideRequest,
    steward: StewardDep,
    events: EventsDep,
    caller: CallerDep,
) -> dict[str, Any]:
    """Approve or override one reviewed prediction; deciding twice is a 409."""
    decision = review.decide_review(
        steward,
        events,
        system,
        prediction_id,
        action=body.action,
        note=body.note,
        actor=caller.actor,
    )
    return decision.to_dict()


@router.post("/v1/systems/{system}:suspend", dependencies=[requires(Role.OPERATOR)])
def suspend(
    system: str, body: SuspendRequest, steward: StewardDep, caller: CallerDep
) -> dict[str, Any]:
    """Suspend the system's automation (serving follows within a second); 409 if suspended."""
    suspensions.check_surface_request(body.mode, body.fallback_action)
    suspension = suspensions.suspend(
        steward,
        system,
        mode=body.mode,
        fallback_action=body.fallback_action,
        reason=body.reason,
        actor=caller.actor,
    )
    return {"system": system, "suspended": True, "suspension": suspension.to_dict()}


@router.post("/v1/systems/{system}:resume", dependencies=[requires(Role.OPERATOR)])
def resume(
    system: str, steward: StewardDep, caller: CallerDep, body: ResumeRequest | None = None
) -> dict[str, Any]:
    """End the open suspension; 409 if the system is not suspended."""
    reason = body.reason if body else ""
    ended = suspensions.resume(steward, system, reason=reason, actor=caller.actor)
    return {"system": system, "suspended": False, "suspension": ended.to_dict()}


@router.get("/v1/systems/{system}/suspension", dependencies=[requires(Role.VIEWER)])
def suspension(system: str, steward: StewardDep) -> dict[str, Any]:
    """The open suspension, or ``suspended: false``."""
    current = suspensions.current_suspension(steward, system)
    return {
        "system": system,
        "suspended": current is not None,
        "suspension": current.to_dict() if current else None,
    }
