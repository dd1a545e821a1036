"""Predictions over HTTP: score records and receive outcomes.

``POST /v1/systems/{system}/predict`` scores with the champion (or canary), decides and logs each
record; ``outcomes`` joins later truth to predictions by id or entity key. Both are the ``client``
role's (``web/roles.py``). ``predictions:log``, for predictions made elsewhere, is in
``web/routes/logging.py``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from steward.data.events import EventLog
from steward.errors import NotFoundError
from steward.web.deps import EventsDep, MetricsDep, ServiceDep, StewardDep
from steward.web.logged_bodies import FiniteFloat, Key, valid_text
from steward.web.roles import Role, RoleRoute, requires

__all__ = [
    "MAX_RECORDS",
    "Outcome",
    "OutcomesRequest",
    "PredictRequest",
    "outcomes",
    "predict",
    "router",
]

MAX_RECORDS = 10_000


#: Text that is valid Unicode (no lone surrogates), so it can be stored.
Text = Annotated[str, AfterValidator(lambda text: valid_text(text))]


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_RECORDS)
    #: Protected attributes beside the records (``fairness.attributes``), one object per record:
    #: logged with each prediction for the fairness monitor, never given to the model.
    attributes: list[dict[str, Any] | None] | None = Field(default=None, max_length=MAX_RECORDS)


class Outcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Key | None = None
    prediction_id: Key | None = None
    entity_key: Key | None = None
    value: FiniteFloat | bool | Text
    event_time: datetime | None = None

    @model_validator(mode="after")
    def _needs_a_key(self) -> Outcome:
        if not self.prediction_id and not self.entity_key:
            raise ValueError("each outcome needs a prediction_id or an entity_key")
        return self


class OutcomesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcomes: list[Outcome] = Field(min_length=1, max_length=MAX_RECORDS)


router = APIRouter(route_class=RoleRoute, tags=["predictions"])


@router.post("/v1/systems/{system}/predict", dependencies=[requires(Role.CLIENT)])
async def predict(system: str, body: PredictRequest, service: ServiceDep) -> dict[str, Any]:
    """Score one or many records with the champion (or canary), decide, and log each.

    ``attributes``, beside ``records`` and one object per record, are protected attributes the
    fairness monitor reads: logged with the prediction, never given to the model.
    Concurrent requests share one model call and one durable append (``delivery/batching.py``);
    the route waits on the event loop, holding no thread, and answers with plain JSON.
    """
    results = await service.predict_async(system, body.records, attributes=body.attributes)
    content = {"system": system, "predictions": [result.to_dict() for result in results]}
    return JSONResponse(content)  # type: ignore[return-value]  # documented as the dict it is


@router.post("/v1/systems/{system}/outcomes", dependencies=[requires(Role.CLIENT)])
def outcomes(
    system: str,
    body: OutcomesRequest,
    steward: StewardDep,
    events: EventsDep,
    metrics: MetricsDep,
) -> dict[str, Any]:
    """Later truth or business results, joined by prediction id or entity key; idempotent."""
    steward.system(system)
    _check_prediction_ids(events, system, body.outcomes)
    received = datetime.now(UTC)
    rows = [_outcome_event(system, outcome, received) for outcome in body.outcomes]
    events.append(rows)
    metrics.outcomes.labels(system).inc(len(rows))
    return {"system": system, "accepted": len(rows), "ids": [row["id"] for row in rows]}


def _check_prediction_ids(events: EventLog, system: str, outcomes: list[Outcome]) -> None:
    wanted = {outcome.prediction_id for outcome in outcomes if outcome.prediction_id}
    if not wanted:
        return
    found = events.existing_ids("prediction", system, wanted)
    missing = sorted(wanted - found)
    if missing:
        shown = ", ".join(repr(item) for item in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise NotFoundError(
            f"system {system!r} has no prediction with id {shown}{more}; send outcomes for logged "
            "predictions, or key them by entity_key instead"
        )


def _outcome_event(system: str, outcome: Outcome, received: datetime) -> dict[str, Any]:
    key = outcome.prediction_id or f"entity:{outcome.entity_key}"
    when = outcome.event_time or received
    # Without an id, the same outcome sent twice (a retry) must collapse to one: derive the id.
    outcome_id = (
        outcome.id
        or hashlib.sha256(
            f"{key}|{outcome.event_time.isoformat() if outcome.event_time else ''}|"
            f"{outcome.value!r}".encode()
        ).hexdigest()[:32]
    )
    numeric = float(outcome.value) if isinstance(outcome.value, bool | float | int) else None
    return {
        "kind": "outcome",
        "system": system,
        "id": outcome_id,
        "event_time": _aware(when),
        "prediction_id": outcome.prediction_id,
        "entity_key": outcome.entity_key,
        "value": numeric,
        "value_text": outcome.value if isinstance(outcome.value, str) else None,
    }


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
