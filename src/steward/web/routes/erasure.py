"""HTTP for erasure by subject (``steward.governance.erasure``).

Its ``router`` holds ``POST /v1/erasures``: ``{"entity_key": "customer-42", "systems": ["churn"]}``
(``systems`` left out: every system) removes the subject's data everywhere Steward keeps it and
answers with the receipt: the salted hash of the key, its salt, the counts removed per place and
the id of the receipt's audit entry. The ``admin`` role's: it destroys data.

An empty key is a 422 and an unknown system a 404, both ``application/problem+json``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from steward.governance import erasure
from steward.web.auth import CallerDep
from steward.web.deps import EventsDep, StewardDep
from steward.web.roles import Role, RoleRoute, requires

__all__ = ["ErasureRequest", "erase", "router"]


class ErasureRequest(BaseModel):
    """Whose data to erase, and from which systems (default: every one)."""

    model_config = ConfigDict(extra="forbid")

    entity_key: str = Field(max_length=500)
    systems: list[str] | None = Field(default=None, max_length=1000)


router = APIRouter(route_class=RoleRoute, tags=["erasure"])


@router.post("/v1/erasures", dependencies=[requires(Role.ADMIN)])
def erase(
    body: ErasureRequest, steward: StewardDep, events: EventsDep, caller: CallerDep
) -> dict[str, Any]:
    """Erase one subject's predictions, outcomes, review decisions, reference rows and retrain
    export rows; return the receipt with the counts. Running it again counts zero."""
    receipt = erasure.erase_subject(steward, body.entity_key, body.systems, actor=caller.actor)
    return receipt.to_dict()
