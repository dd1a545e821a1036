"""The HTTP API: predictions, outcomes, logging, Open Inference Protocol v2, health and metrics.

``create_app(steward)`` builds the FastAPI application the server runs; tests call it in process through
httpx's ASGI transport, and end-to-end tests run it under a real uvicorn.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, model_validator

from steward import __version__
from steward._util.times import retention_cutoff
from steward.core import Steward
from steward.data.events import EventLog
from steward.delivery.serving import Service
from steward.errors import NotFoundError
from steward.loop.tick import Scheduler
from steward.web.dashboard import install_dashboard
from steward.web.metrics import Metrics
from steward.web.problems import BodyLimit, install_problem_handlers
from steward.web.routes.loop import install_loop_routes
from steward.web.routes.oip import install_oip_routes
from steward.web.routes.playbooks import install_playbook_routes
from steward.web.routes.review import install_review_routes

__all__ = ["create_app"]

MAX_RECORDS = 10_000
MAX_LOGGED = 200_000


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_RECORDS)


class Outcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=200)
    prediction_id: str | None = Field(default=None, max_length=200)
    entity_key: str | None = Field(default=None, max_length=200)
    value: float | bool | str
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

    id: str | None = Field(default=None, max_length=200)
    entity_key: str | None = Field(default=None, max_length=200)
    event_time: datetime | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    score: float | None = None
    output: Any = None
    decision: str | None = None
    holdout: bool = False
    model_version: int | None = None
    latency_ms: float | None = None


class LogRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    predictions: list[LoggedPrediction] = Field(min_length=1, max_length=MAX_LOGGED)


def create_app(
    steward: Steward, *, events: EventLog | None = None, max_request_bytes: int = 64 * 1024 * 1024
) -> FastAPI:
    """The FastAPI app over one workspace; ``events`` defaults to the workspace's event log."""
    owns_events = events is None
    log = events if events is not None else steward.events
    service = Service(steward, log)
    metrics = Metrics()
    service.on_prediction = metrics.observe_prediction

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Retention runs at start; `steward retention` runs it on demand (e.g. from cron).
        log.delete_before(retention_cutoff(steward.settings.retention_days))
        # The loop (monitors, SLOs, alerts, playbooks) every loop_interval seconds; 0 is off.
        scheduler = Scheduler(steward, log, steward.settings.loop_interval)
        scheduler.start()
        yield
        scheduler.stop()
        service.close()  # let shadow scoring finish before the log closes
        if owns_events:
            log.close()  # rolls this process's segments into Parquet

    app = FastAPI(
        title="Steward",
        version=__version__,
        lifespan=lifespan,
        description="Predictions checked at the door, decided by policy, logged durably.",
    )
    app.state.steward, app.state.service, app.state.events = steward, service, log
    install_problem_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=max_request_bytes)
    app.add_middleware(_Timed, metrics=metrics)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """The store answers and the event log is writable."""
        try:
            steward.systems()
        except Exception as error:  # any store failure means not ready
            return JSONResponse({"status": "unavailable", "detail": str(error)}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", tags=["health"])
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/systems/{system}/predict", tags=["predictions"])
    def predict(system: str, body: PredictRequest) -> dict[str, Any]:
        """Score one or many records with the champion (or canary), decide, and log each."""
        results = service.predict(system, body.records)
        return {"system": system, "predictions": [result.to_dict() for result in results]}

    @app.post("/v1/systems/{system}/outcomes", tags=["predictions"])
    def outcomes(system: str, body: OutcomesRequest) -> dict[str, Any]:
        """Later truth or business results, joined by prediction id or entity key; idempotent."""
        steward.system(system)
        _check_prediction_ids(log, system, body.outcomes)
        received = datetime.now(UTC)
        rows = [_outcome_event(system, outcome, received) for outcome in body.outcomes]
        log.append(rows)
        metrics.outcomes.labels(system).inc(len(rows))
        return {"system": system, "accepted": len(rows), "ids": [row["id"] for row in rows]}

    @app.post("/v1/systems/{system}/predictions:log", tags=["predictions"])
    def log_predictions(system: str, body: LogRequest) -> dict[str, Any]:
        """Log predictions served elsewhere, so Steward can monitor them."""
        steward.system(system)
        received = datetime.now(UTC)
        rows = [_logged_event(system, item, received) for item in body.predictions]
        log.append(rows)
        metrics.logged.labels(system).inc(len(rows))
        return {"system": system, "accepted": len(rows)}

    install_oip_routes(app, service)
    install_dashboard(app, steward, log)
    install_loop_routes(app, steward, log)
    install_review_routes(app, steward, log)
    install_playbook_routes(app, steward)
    return app


class _Timed:
    """Adapter so ``app.add_middleware`` can build the metrics middleware around the app."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self._timed = metrics.middleware(app)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._timed(scope, receive, send)


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
