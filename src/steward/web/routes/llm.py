"""HTTP for LLM calls (``steward.llm.calls``): logging them from any language, reading them back.

Its ``router`` holds:

- ``POST /v1/systems/{system}/llm-calls:log``: ``{"calls": [...]}`` in the OpenTelemetry GenAI
  vocabulary (``docs/llm.md``); each is checked, priced once with the prices valid at its time,
  and acknowledged only once durable. The ``client`` role's.
- ``GET /v1/systems/{system}/llm-calls?start=&end=&limit=``: the calls of a window, newest first,
  with their tokens and cost. The ``viewer`` role's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from steward.errors import InvalidInputError
from steward.llm import calls as llm_calls
from steward.llm.cost import price_book
from steward.web.deps import EventsDep, StewardDep
from steward.web.roles import Role, RoleRoute, requires

__all__ = ["LogCallsRequest", "list_calls", "log_calls", "router"]


class LogCallsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    calls: list[dict[str, Any]] = Field(max_length=llm_calls.MAX_CALLS)


router = APIRouter(route_class=RoleRoute, tags=["llm"])


@router.post("/v1/systems/{system}/llm-calls:log", dependencies=[requires(Role.CLIENT)])
def log_calls(
    system: str, body: LogCallsRequest, steward: StewardDep, events: EventsDep
) -> dict[str, Any]:
    """Log LLM calls; returns how many, their ids, their total cost and how many are unpriced."""
    declared = steward.system(system).declared
    if declared.task != "llm":
        raise InvalidInputError(
            f"system {system!r} has task {declared.task!r}; LLM calls are logged to a system of "
            "task 'llm' (declare one in steward.yaml)"
        )
    stored = llm_calls.record_calls(
        events, system, body.calls, prices=price_book(declared), text=declared.call_text
    )
    priced = [event["cost"] for event in stored if event["priced"]]
    return {
        "system": system,
        "accepted": len(stored),
        "ids": [event["id"] for event in stored],
        "cost": sum(priced),
        "unpriced": len(stored) - len(priced),
    }


@router.get("/v1/systems/{system}/llm-calls", dependencies=[requires(Role.VIEWER)])
def list_calls(
    system: str,
    steward: StewardDep,
    events: EventsDep,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = Query(default=100, ge=1, le=10_000),
) -> dict[str, Any]:
    """The calls with ``start <= event_time < end`` (default: the last day; UTC when a time
    names no zone), newest first."""
    steward.system(system)
    start, end = (
        moment.replace(tzinfo=UTC) if moment and not moment.tzinfo else moment
        for moment in (start, end)
    )  # a time with no zone is UTC, as for the calls
    end = end or datetime.now(UTC) + timedelta(seconds=1)
    start = start or end - timedelta(days=1)
    table = events.scan("llm_call", system, start=start, end=end)
    rows = table.to_pylist()[::-1][:limit]
    for row in rows:
        for key in ("event_time", "received_at"):
            row[key] = row[key].isoformat()
    return {"system": system, "calls": rows}
