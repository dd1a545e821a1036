"""Predictions over HTTP: score records, log predictions served elsewhere, receive outcomes.

``POST /v1/systems/{system}/predict`` scores with the champion (or canary), decides and logs each
record; ``predictions:log`` logs predictions made elsewhere so Steward can monitor them;
``outcomes`` joins later truth to predictions by id or entity key. All three are the ``client``
role's (``web/roles.py``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from steward._util.text import check_text, is_valid_text
from steward.data.events import EventLog
from steward.errors import NotFoundError
from steward.web.deps import EventsDep, MetricsDep, ServiceDep, StewardDep
from steward.web.roles import Role, RoleRoute, requires

__all__ = [
    "MAX_LOGGED",
    "MAX_RECORDS",
    "LogRequest",
    "LoggedPrediction",
    "Outcome",
    "OutcomesRequest",
    "PredictRequest",
    "log_predictions",
    "outcomes",
    "predict",
    "router",
]

MAX_RECORDS = 10_000
MAX_LOGGED = 200_000


#: A number that is a number: NaN and infinities are refused where a score, a latency or an
#: outcome's value is expected (JSON parsers here accept them).
FiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=False)]
#: Text that is valid Unicode (no lone surrogates), so it can be stored.
Text = Annotated[str, AfterValidator(lambda text: _valid_text(text))]
#: An id, an entity key or a decision: valid text of at most 200 characters.
Key = Annotated[str, Field(max_length=200), AfterValidator(lambda text: _valid_text(text))]


def _valid_text(text: str) -> str:
    if not is_valid_text(text):
        raise ValueError("text that is not valid Unicode (a lone surrogate); send UTF-8")
    return text


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_RECORDS)


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


class LoggedPrediction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Key | None = None
    entity_key: Key | None = None
    event_time: datetime | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    score: FiniteFloat | None = None
    output: Any = None
    decision: Key | None = None
    holdout: bool = False
    model_version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    latency_ms: FiniteFloat | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _valid_text(self) -> LoggedPrediction:
        check_text(self.inputs, "inputs")
        check_text(self.output, "output")
        return self


class LogRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    predictions: list[LoggedPrediction] = Field(min_length=1, max_length=MAX_LOGGED)


router = APIRouter(route_class=RoleRoute, tags=["predictions"])


@router.post("/v1/systems/{system}/predict", dependencies=[requires(Role.CLIENT)])
def predict(system: str, body: PredictRequest, service: ServiceDep) -> dict[str, Any]:
    """Score one or many records with the champion (or canary), decide, and log each."""
    results = service.predict(system, body.records)
    return {"system": system, "predictions": [result.to_dict() for result in results]}


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


@router.post("/v1/systems/{system}/predictions:log", dependencies=[requires(Role.CLIENT)])
def log_predictions(
    system: str,
    body: LogRequest,
    steward: StewardDep,
    events: EventsDep,
    metrics: MetricsDep,
) -> dict[str, Any]:
    """Log predictions served elsewhere, so Steward can monitor them."""
    steward.system(system)
    received = datetime.now(UTC)
    rows = [_logged_event(system, item, received) for item in body.predictions]
    events.append(rows)
    metrics.logged.labels(system).inc(len(rows))
    return {"system": system, "accepted": len(rows)}


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


def _logged_event(system: str, item: LoggedPrediction, received: datetime) -> dict[str, Any]:
    identifier = (
        item.id
        or hashlib.sha256(
            json.dumps(
                [item.entity_key, item.event_time and item.event_time.isoformat(), item.inputs],
                sort_keys=True,
                default=str,
            ).encode()
        ).hexdigest()[:32]
    )
    return {
        "kind": "prediction",
        "system": system,
        "id": identifier,
        "event_time": _aware(item.event_time or received),
        "entity_key": item.entity_key,
        "model_version": item.model_version,
        "inputs": json.dumps(item.inputs, default=str),
        "score": item.score,
        "output": json.dumps(item.output, default=str),
        "decision": item.decision,
        "holdout": item.holdout,
        "latency_ms": item.latency_ms,
    }


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
