"""HTTP for the review queue and for suspending a system's automation (``steward.governance.review``).

``install_review_routes(app, steward, events)`` adds:

- ``GET /v1/systems/{system}/reviews``: the pending reviews, oldest first;
- ``POST /v1/systems/{system}/reviews/{prediction_id}``: approve (no ``action``, or the proposed one)
  or override (another ``action``), with an optional ``note``;
- ``POST /v1/systems/{system}:suspend``, ``POST /v1/systems/{system}:resume`` and
  ``GET /v1/systems/{system}/suspension``.

Errors are ``application/problem+json`` through the app's handlers (``web/problems.py``). Changes are
recorded under the server's user (the ``user`` setting): the API has no login of its own yet.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Query
from pydantic import BaseModel, ConfigDict, Field

from steward.core import Steward
from steward.data.events import EventLog
from steward.delivery import suspension as suspensions
from steward.governance import review

__all__ = ["DecideRequest", "ResumeRequest", "SuspendRequest", "install_review_routes"]


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


def install_review_routes(app: FastAPI, steward: Steward, events: EventLog) -> None:
    """Add the review-queue and suspension endpoints to ``app``."""

    @app.get("/v1/systems/{system}/reviews", tags=["review"])
    def list_reviews(
        system: str, limit: int = Query(default=100, ge=1, le=review.MAX_LIMIT)
    ) -> dict[str, Any]:
        """Predictions waiting for a person, oldest first, with inputs and why they wait."""
        items = review.pending_reviews(steward, events, system, limit=limit)
        return {"system": system, "reviews": [item.to_dict() for item in items]}

    @app.post("/v1/systems/{system}/reviews/{prediction_id}", tags=["review"])
    def decide(system: str, prediction_id: str, body: DecideRequest) -> dict[str, Any]:
        """Approve or override one reviewed prediction; deciding twice is a 409."""
        decision = review.decide_review(
            steward, events, system, prediction_id, action=body.action, note=body.note
        )
        return decision.to_dict()

    @app.post("/v1/systems/{system}:suspend", tags=["review"])
    def suspend(system: str, body: SuspendRequest) -> dict[str, Any]:
        """Suspend the system's automation (serving follows within a second); 409 if suspended."""
        suspensions.check_surface_request(body.mode, body.fallback_action)
        suspension = suspensions.suspend(
            steward,
            system,
            mode=body.mode,
            fallback_action=body.fallback_action,
            reason=body.reason,
        )
        return {"system": system, "suspended": True, "suspension": suspension.to_dict()}

    @app.post("/v1/systems/{system}:resume", tags=["review"])
    def resume(system: str, body: ResumeRequest | None = None) -> dict[str, Any]:
        """End the open suspension; 409 if the system is not suspended."""
        ended = suspensions.resume(steward, system, reason=body.reason if body else "")
        return {"system": system, "suspended": False, "suspension": ended.to_dict()}

    @app.get("/v1/systems/{system}/suspension", tags=["review"])
    def suspension(system: str) -> dict[str, Any]:
        """The open suspension, or ``suspended: false``."""
        current = suspensions.current_suspension(steward, system)
        return {
            "system": system,
            "suspended": current is not None,
            "suspension": current.to_dict() if current else None,
        }
