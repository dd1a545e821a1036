"""Logging predictions served elsewhere: ``POST /v1/systems/{system}/predictions:log``.

The body is JSON (``{"predictions": [...]}``, the fields of :class:`LoggedPrediction`) or an Arrow
IPC stream (``application/vnd.apache.arrow.stream``) with one row per prediction. Both are read
into columns and checked column by column: the envelope fields with the same rules the JSON model
declares, the inputs against the system's contract (``check_batch``); then the whole request is
appended to the event log as one record batch, with one fsync (``EventLog.append_table``).

A refusal is a problem+json 4xx naming the record, the field or column and the value: 400 for a
body that is not JSON or not an Arrow stream, 415 for another content type, 422 for a value that
breaks an envelope rule. Nothing is stored unless every record is accepted. Inputs that break the
contract are logged all the same (the prediction was made; monitoring must see it), each row with
its violations in the ``violations`` field, and the answer lists the batch's violations.
``docs/serving.md`` describes both bodies.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Annotated, Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
from fastapi import APIRouter, Depends, Request

from steward.data.contracts import (
    Contract,
    Violation,
    check_batch,
    protect_violations,
    workspace_secret,
)
from steward.data.contracts.personal import REDACTED
from steward.data.events import PREDICTION_SCHEMA
from steward.data.events.schemas import check_attributes
from steward.web.deps import EventsDep, MetricsDep, ServiceDep, StewardDep
from steward.web.logged_bodies import (
    ARROW_STREAM,
    LoggedColumns,
    LogRequest,
    UnsupportedMediaTypeError,
    protect_inputs,
    read_arrow,
    read_json,
    shown,
    with_attributes,
)
from steward.web.roles import Role, RoleRoute, requires

__all__ = ["REQUEST_BODY", "log_predictions", "read_body", "router"]


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref", "")
            if reference.startswith("#/$defs/"):
                return resolve(definitions[reference.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


#: The request body as OpenAPI describes it: the JSON model, or an Arrow IPC stream.
REQUEST_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inlined(LogRequest.model_json_schema())},
            ARROW_STREAM: {
                "schema": {
                    "type": "string",
                    "format": "binary",
                    "description": (
                        "An Arrow IPC stream, one row per prediction: the envelope columns "
                        "(id, entity_key, event_time, score, output, decision, holdout, "
                        "model_version, latency_ms) and the inputs, as columns beside them or "
                        "as one struct column 'inputs'."
                    ),
                }
            },
        },
    }
}

router = APIRouter(route_class=RoleRoute, tags=["predictions"])


async def read_body(request: Request) -> bytes:
    """The raw request body (read on the event loop, so the route itself runs in a thread)."""
    return await request.body()


@router.post(
    "/v1/systems/{system}/predictions:log",
    dependencies=[requires(Role.CLIENT)],
    openapi_extra=REQUEST_BODY,
)
def log_predictions(
    system: str,
    request: Request,
    body: Annotated[bytes, Depends(read_body)],
    service: ServiceDep,
    steward: StewardDep,
    events: EventsDep,
    metrics: MetricsDep,
) -> dict[str, Any]:
    """Log predictions served elsewhere (JSON or an Arrow IPC stream), so Steward can monitor them.

    Personal-data columns of the contract are hashed or dropped before anything is stored;
    protected attributes sent beside the inputs are checked against ``fairness.attributes``.
    """
    runtime = service.runtime(system)  # a 404 for a system that does not exist
    contract = runtime.contract
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == ARROW_STREAM:
        logged = read_arrow(body)
    elif media in ("", "application/json") or media.endswith("+json"):
        logged = read_json(body)
    else:
        raise UnsupportedMediaTypeError(
            f"content type {media!r} is not one predictions:log reads; send application/json "
            f"({{'predictions': [...]}}) or {ARROW_STREAM} (an Arrow IPC stream)"
        )
    where = "predictions[{index}].attributes"
    attributes = check_attributes(
        system, runtime.attributes, logged.attributes, logged.n_rows, where
    )
    by_row, violations = _check_contract(contract, logged)
    personal = contract.personal if contract else {}
    if personal:
        logged = protect_inputs(logged, personal, workspace_secret(steward.settings.store_dir))
    if attributes is not None:
        logged.inputs_text = with_attributes(logged.inputs_text, attributes)
    events.append_table("prediction", _events_table(system, logged, by_row))
    metrics.logged.labels(system).inc(logged.n_rows)
    return {"system": system, "accepted": logged.n_rows, "violations": violations}


def _check_contract(
    contract: Contract | None, logged: LoggedColumns
) -> tuple[pa.Array | None, list[dict[str, Any]]]:
    """Each row's violations as JSON text (null where none), and the batch's, for the answer.

    A logged prediction was already made and acted on elsewhere: refusing it would only hide it
    from monitoring, so every broken rule (``reject`` or ``flag``) is recorded with its rows.
    """
    if contract is None:
        return None, []
    inputs = logged.frame(contract)
    report = check_batch(contract, inputs)
    if report.ok:
        return None, []
    personal = contract.personal
    texts: list[str | None] = [None] * logged.n_rows
    cache: dict[tuple[Any, ...], str] = {}
    for row, found in _by_row(report.violations, inputs, personal).items():
        key = tuple((item.column, item.rule, shown(item.example)) for item in found)
        text = cache.get(key)
        if text is None:
            text = cache[key] = json.dumps([item.to_dict() for item in found], default=str)
        texts[row] = text
    answer = [item.to_dict() for item in protect_violations(report.violations, personal)]
    return pa.array(texts, pa.string()), answer


def _by_row(
    violations: tuple[Violation, ...], inputs: Any, personal: dict[str, Any]
) -> dict[int, list[Violation]]:
    """Each row's violations, as a record check reports them (its own value, no count)."""
    frame = inputs if isinstance(inputs, pd.DataFrame) else inputs.to_pandas()
    found: dict[int, list[Violation]] = {}
    for violation in violations:
        if violation.mask is None:
            continue
        whole = violation.rule in ("missing_column", "extra_column")
        values = None if whole else frame[violation.column].to_numpy(dtype=object)
        for row in np.flatnonzero(violation.mask).tolist():
            example = None if values is None else _plain(values[row])
            if violation.column in personal and example is not None:
                example = REDACTED
            found.setdefault(row, []).append(
                Violation(
                    violation.column,
                    violation.rule,
                    violation.action,
                    1,
                    None,
                    example,
                    violation.expected,
                    violation.contract,
                )
            )
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value if isinstance(value, str | int | float | bool) else str(value)


def _events_table(system: str, logged: LoggedColumns, violations: pa.Array | None) -> pa.Table:
    ids = logged.ids
    missing = [row for row, identifier in enumerate(ids) if not identifier]
    if missing:
        ids = list(ids)
        for row, identity in zip(missing, logged.identities(missing), strict=True):
            ids[row] = _derived_id(identity)
    columns: dict[str, Any] = {
        "system": pa.array([system] * logged.n_rows, pa.string()),
        "id": pa.array(ids, pa.string()),
        **logged.envelope,
        "inputs": logged.inputs_text,
    }
    if violations is not None:
        columns["violations"] = violations
    names = [name for name in PREDICTION_SCHEMA.names if name in columns]
    return pa.table([columns[name] for name in names], names=names)


def _derived_id(identity: list[Any]) -> str:
    # Without an id, the same prediction sent twice (a retry) must collapse to one: derive it.
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
