"""HTTP for the actions playbooks took and the approvals that wait for a person.

Its ``router`` holds:

- ``GET /v1/systems/{system}/actions?limit=``: the newest actions on a system, newest first;
- ``GET /v1/approvals?state=&system=``: approvals (``pending`` by default, or ``approved``,
  ``rejected``, ``all``), newest first;
- ``POST /v1/approvals/{id}:approve`` and ``POST /v1/approvals/{id}:reject`` with ``{"note": ""}``
  (the ``approver`` role's; the lists are the ``viewer``'s).

Errors are ``application/problem+json`` (``web/problems.py``): 404 for an unknown approval, 409 for
one decided already, 403 when the caller requested the approval on a high-risk system (four
eyes). Decisions are recorded under the caller's identity.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from steward.loop import playbooks, promotion
from steward.store import MAX_ROW_ID
from steward.web.auth import CallerDep
from steward.web.deps import StewardDep
from steward.web.roles import Role, RoleRoute, requires

__all__ = [
    "ApprovalId",
    "DecisionRequest",
    "approve",
    "list_actions",
    "list_approvals",
    "reject",
    "router",
]

ApprovalId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="The approval's id.")]


class DecisionRequest(BaseModel):
    """A person's note on an approval decision, kept with it and in the audit log."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=10_000)


router = APIRouter(route_class=RoleRoute, tags=["playbooks"])


@router.get("/v1/systems/{system}/actions", dependencies=[requires(Role.VIEWER)])
def list_actions(
    system: str, steward: StewardDep, limit: int = Query(default=50, ge=1, le=10_000)
) -> dict[str, Any]:
    """What playbooks and people did on the system, newest first, and why."""
    actions = playbooks.list_actions(steward, system, limit)
    return {"system": system, "actions": [action.to_dict() for action in actions]}


@router.get("/v1/approvals", dependencies=[requires(Role.VIEWER)])
def list_approvals(
    steward: StewardDep,
    state: Literal["pending", "approved", "rejected", "all"] = "pending",
    system: str | None = Query(default=None, max_length=200),
) -> dict[str, Any]:
    """Approvals in one state (``pending`` by default), newest first."""
    approvals = promotion.list_approvals(steward, system, state)
    return {"approvals": [approval.to_dict() for approval in approvals]}


@router.post("/v1/approvals/{approval_id}:approve", dependencies=[requires(Role.APPROVER)])
def approve(
    approval_id: ApprovalId,
    steward: StewardDep,
    caller: CallerDep,
    body: DecisionRequest | None = None,
) -> dict[str, Any]:
    """Approve a pending promotion: the challenger becomes champion."""
    note = body.note if body else ""
    return promotion.approve(steward, approval_id, caller.actor, note).to_dict()


@router.post("/v1/approvals/{approval_id}:reject", dependencies=[requires(Role.APPROVER)])
def reject(
    approval_id: ApprovalId,
    steward: StewardDep,
    caller: CallerDep,
    body: DecisionRequest | None = None,
) -> dict[str, Any]:
    """Reject a pending promotion: the champion stays."""
    note = body.note if body else ""
    return promotion.reject(steward, approval_id, caller.actor, note).to_dict()
