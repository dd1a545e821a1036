"""HTTP for the actions playbooks took and the approvals that wait for a person.

``install_playbook_routes(app, steward)`` adds:

- ``GET /v1/systems/{system}/actions?limit=``: the newest actions on a system, newest first;
- ``GET /v1/approvals?state=&system=``: approvals (``pending`` by default, or ``approved``,
  ``rejected``, ``all``), newest first;
- ``POST /v1/approvals/{id}:approve`` and ``POST /v1/approvals/{id}:reject`` with ``{"note": ""}``.

Errors are ``application/problem+json`` (``web/problems.py``): 404 for an unknown approval, 409 for
one decided already. Decisions are recorded under the server's user (the ``user`` setting), as the
API has no login of its own yet.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import FastAPI, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from steward.core import Steward
from steward.loop import playbooks, promotion
from steward.store import MAX_ROW_ID

__all__ = ["ApprovalId", "DecisionRequest", "install_playbook_routes"]

ApprovalId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="The approval's id.")]


class DecisionRequest(BaseModel):
    """A person's note on an approval decision, kept with it and in the audit log."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=10_000)


def install_playbook_routes(app: FastAPI, steward: Steward) -> None:
    """Add the actions and approvals endpoints to ``app``."""

    @app.get("/v1/systems/{system}/actions", tags=["playbooks"])
    def list_actions(
        system: str, limit: int = Query(default=50, ge=1, le=10_000)
    ) -> dict[str, Any]:
        """What playbooks and people did on the system, newest first, and why."""
        actions = playbooks.list_actions(steward, system, limit)
        return {"system": system, "actions": [action.to_dict() for action in actions]}

    @app.get("/v1/approvals", tags=["playbooks"])
    def list_approvals(
        state: Literal["pending", "approved", "rejected", "all"] = "pending",
        system: str | None = Query(default=None, max_length=200),
    ) -> dict[str, Any]:
        """Approvals in one state (``pending`` by default), newest first."""
        approvals = promotion.list_approvals(steward, system, state)
        return {"approvals": [approval.to_dict() for approval in approvals]}

    @app.post("/v1/approvals/{approval_id}:approve", tags=["playbooks"])
    def approve(approval_id: ApprovalId, body: DecisionRequest | None = None) -> dict[str, Any]:
        """Approve a pending promotion: the challenger becomes champion."""
        note = body.note if body else ""
        return promotion.approve(steward, approval_id, steward.actor, note).to_dict()

    @app.post("/v1/approvals/{approval_id}:reject", tags=["playbooks"])
    def reject(approval_id: ApprovalId, body: DecisionRequest | None = None) -> dict[str, Any]:
        """Reject a pending promotion: the champion stays."""
        note = body.note if body else ""
        return promotion.reject(steward, approval_id, steward.actor, note).to_dict()
