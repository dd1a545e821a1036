"""The hot path: contract check, champion model, policy, one durable append.

``Service`` is what the HTTP server calls. Per system it keeps a ``Runtime``: the compiled contract,
the policy, and the loaded champion, canary and shadow models. Alias moves are picked up without a
restart: the runtime re-reads the aliases at most once per ``refresh_seconds`` and loads a version the
first time it is needed. Shadow models score the same records on a background thread, off the hot path,
and their scores are logged as ``shadow`` events for comparison. The same refresh reads the system's
open suspension (``steward.delivery.suspension``), so suspending or resuming takes effect within a second: a
suspended decision says so in the response (``suspended``, ``reason``) and in the logged event (its
``output`` becomes ``{"output": ..., "suspended": {"id", "mode", "reason"}}``).

>>> service = Service(steward, EventLog(steward.settings.events_dir))  # doctest: +SKIP
>>> service.predict("churn", [{"tenure": 3, ...}])                     # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from steward._util.text import check_text
from steward.data.contracts import Contract, Violation, check_record
from steward.data.events import EventLog
from steward.delivery.suspension import Suspension, open_suspension, suspension_marker
from steward.errors import ContractViolationError, InvalidInputError, NotFoundError
from steward.model.flavors import LoadedModel
from steward.model.policy import REVIEW_ACTION, Decision, Policy, decide
from steward.model.registry import find_system
from steward.store import AliasRow
from steward.workspace import Workspace
from steward.workspace.systems import get_contract

__all__ = ["PredictionResult", "Runtime", "Service"]

logger = logging.getLogger(__name__)

RESERVED = ("id", "entity_key", "event_time")
#: The longest prediction id or entity key accepted (the same cap as outcome ids).
MAX_KEY = 200


@dataclass(frozen=True)
class PredictionResult:
    id: str
    model_version: int
    score: float | list[float] | None
    decision: str | None
    holdout: bool
    review: bool
    violations: list[dict[str, Any]]
    suspended: bool = False
    reason: str | None = None  # why a person decides: "review band" or "suspended: <reason>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model_version": self.model_version,
            "score": self.score,
            "decision": self.decision,
            "holdout": self.holdout,
            "review": self.review,
            "violations": self.violations,
            "suspended": self.suspended,
            "reason": self.reason,
        }


@dataclass
class Runtime:
    """What serving one system needs, refreshed from the store when aliases move."""

    name: str
    task: str
    entity_key_column: str
    contract: Contract | None
    policy: Policy | None
    canary_share: float
    aliases: dict[str, int] = field(default_factory=dict)
    suspension: Suspension | None = None
    checked_at: float = 0.0

    @property
    def champion(self) -> int | None:
        return self.aliases.get("champion")

    def route(self, entity_key: str) -> int | None:
        """Champion, or the canary for a sticky share of entities (the same entity, the same arm)."""
        canary = self.aliases.get("canary")
        if canary is None or self.canary_share <= 0 or not entity_key:
            return self.champion
        digest = hashlib.blake2b(f"canary:{self.name}:{entity_key}".encode(), digest_size=8)
        draw = int.from_bytes(digest.digest(), "big") / 2**64
        return canary if draw < self.canary_share else self.champion

    def shadows(self) -> list[int]:
        return sorted(
            {
                version
                for alias, version in self.aliases.items()
                if alias == "shadow" or alias.startswith("shadow-")
            }
        )


class Service:
    """Scores records for any system of a workspace and logs every prediction durably."""

    def __init__(
        self,
        steward: Workspace,
        events: EventLog,
        *,
        refresh_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.steward = steward
        self.events = events
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._runtimes: dict[str, Runtime] = {}
        self._models: dict[tuple[str, int], LoadedModel] = {}
        self._lock = threading.Lock()
        self._shadow_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="steward-shadow")
        self.on_prediction: Callable[[str, int, float, list[Violation]], None] | None = None

    def close(self) -> None:
        self._shadow_pool.shutdown(wait=True)

    # Runtime state

    def runtime(self, system: str) -> Runtime:
        """The system's runtime, with aliases re-read when older than ``refresh_seconds``."""
        now = self._clock()
        runtime = self._runtimes.get(system)
        if runtime is None or now - runtime.checked_at > self.refresh_seconds:
            with self._lock:
                runtime = self._load_runtime(system)
                runtime.checked_at = now
                self._runtimes[system] = runtime
        return runtime

    def _load_runtime(self, system: str) -> Runtime:
        info = self.steward.system(system)
        config = info.config
        contract = get_contract(self.steward.store, system)
        previous = self._runtimes.get(system)
        if (
            previous
            and previous.contract
            and contract
            and previous.contract.version == contract.version
        ):
            contract = previous.contract  # keep its compiled checks across alias refreshes
        policy = Policy.from_dict(config["policy"]) if config.get("policy") else None
        traffic = config.get("traffic") or {}
        with self.steward.store.read() as session:
            system_row = find_system(session, system)
            rows = session.scalars(select(AliasRow).where(AliasRow.system_id == system_row.id))
            aliases = {row.name: row.version for row in rows if row.version is not None}
            suspension = open_suspension(session, system_row.id, system)
        return Runtime(
            name=system,
            task=info.task,
            entity_key_column=info.entity_key,
            contract=contract,
            policy=policy,
            canary_share=float(traffic.get("canary_share", 0.0)),
            aliases=aliases,
            suspension=suspension,
        )

    def model(self, system: str, version: int) -> LoadedModel:
        key = (system, version)
        model = self._models.get(key)
        if model is None:
            model = self.steward.load_model(system, version)
            self._models[key] = model
        return model

    # The hot path

    def predict(self, system: str, records: Sequence[Mapping[str, Any]]) -> list[PredictionResult]:
        """Check, score, decide and durably log ``records``; return one result per record."""
        runtime = self.runtime(system)
        if runtime.champion is None:
            raise NotFoundError(
                f"system {system!r} has no champion to serve; register a version and run "
                f"`steward models alias {system} champion VERSION`"
            )
        envelopes, inputs = _split(records, runtime.entity_key_column)
        violations = self._check(runtime, inputs)
        received = datetime.now(UTC)
        routes = [runtime.route(envelope["entity_key"]) for envelope in envelopes]
        scores: list[Any] = [None] * len(records)
        latencies = [0.0] * len(records)
        for version in sorted(set(v for v in routes if v is not None)):
            rows = [index for index, route in enumerate(routes) if route == version]
            frame = pd.DataFrame([inputs[index] for index in rows])
            started = time.perf_counter()
            predicted = _score(self.model(system, version), frame, runtime, version)
            elapsed_ms = (time.perf_counter() - started) * 1000 / max(len(rows), 1)
            for position, index in enumerate(rows):
                scores[index] = _plain_score(predicted[position])
                latencies[index] = elapsed_ms
        results, events = [], []
        for index, envelope in enumerate(envelopes):
            decision = _decide(runtime.policy, scores[index], envelope["entity_key"])
            verdict = _verdict(decision, runtime.suspension)
            result = PredictionResult(
                id=envelope["id"],
                model_version=int(routes[index] or 0),
                score=scores[index],
                decision=verdict.action,
                holdout=verdict.holdout,
                review=verdict.review,
                violations=[violation.to_dict() for violation in violations[index]],
                suspended=verdict.suspension is not None,
                reason=verdict.reason,
            )
            results.append(result)
            events.append(
                _prediction_event(
                    system, envelope, inputs[index], result, verdict, latencies[index], received
                )
            )
        self.events.append(events)
        if self.on_prediction is not None:
            for index, result in enumerate(results):
                self.on_prediction(
                    system, result.model_version, latencies[index], violations[index]
                )
        shadows = [version for version in runtime.shadows() if version not in set(routes)]
        if shadows:
            self._shadow_pool.submit(
                self._score_shadows, system, runtime.task, shadows, envelopes, inputs
            )
        return results

    def _check(self, runtime: Runtime, inputs: list[dict[str, Any]]) -> list[list[Violation]]:
        if runtime.contract is None:
            return [[] for _ in inputs]
        found = [check_record(runtime.contract, record) for record in inputs]
        rejected = [
            {"record": index, **violation.to_dict()}
            for index, violations in enumerate(found)
            for violation in violations
            if violation.action == "reject"
        ]
        if rejected:
            first = rejected[0]
            more = f" (and {len(rejected) - 1} more)" if len(rejected) > 1 else ""
            raise ContractViolationError(
                f"record {first['record']}: {first['message']}{more}", rejected
            )
        return found

    def _score_shadows(
        self,
        system: str,
        task: str,
        versions: list[int],
        envelopes: list[dict[str, Any]],
        inputs: list[dict[str, Any]],
    ) -> None:
        frame = pd.DataFrame(inputs)
        received = datetime.now(UTC)
        for version in versions:
            try:
                started = time.perf_counter()
                predicted = self.model(system, version).predict(frame, task)
                latency = (time.perf_counter() - started) * 1000 / max(len(inputs), 1)
                # A shadow event carries the id of the prediction it shadows; the log keys
                # shadows by (id, model_version).
                self.events.append(
                    [
                        {
                            "kind": "shadow",
                            "system": system,
                            "id": envelope["id"],
                            "entity_key": envelope["entity_key"],
                            "event_time": envelope["event_time"] or received,
                            "model_version": version,
                            "score": _numeric(_plain_score(predicted[i])),
                            "output": json.dumps(_plain_score(predicted[i])),
                            "latency_ms": latency,
                        }
                        for i, envelope in enumerate(envelopes)
                    ]
                )
            except Exception:  # a failing shadow must never touch the served path
                logger.exception("shadow v%s of %s failed", version, system)


def _score(model: LoadedModel, frame: pd.DataFrame, runtime: Runtime, version: int) -> Any:
    """Call the model; input it cannot score is the caller's mistake (422), not a server error."""
    try:
        return model.predict(frame, runtime.task)
    except (ValueError, KeyError, TypeError) as error:
        hint = "" if runtime.contract else "; a contract on the system would catch this at the door"
        reason = _column_mismatch(model, frame) or (
            str(error).splitlines()[0] if str(error) else type(error).__name__
        )
        raise InvalidInputError(
            f"model v{version} of {runtime.name!r} could not score the records: {reason}; "
            f"check the input columns and types{hint}"
        ) from None


def _column_mismatch(model: LoadedModel, frame: pd.DataFrame) -> str | None:
    """Every missing and unexpected column, by name, when the model says which columns it takes."""
    expected = getattr(model.model, "feature_names_in_", None)
    if expected is None:
        return None
    wanted, given = [str(name) for name in expected], [str(name) for name in frame.columns]
    missing = [name for name in wanted if name not in set(given)]
    unexpected = [name for name in given if name not in set(wanted)]
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} column(s) the model takes: {_names(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} column(s) the model does not take: {_names(unexpected)}")
    return "; ".join(parts) or None


def _names(names: list[str], shown: int = 30) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(repr(name) for name in names[:shown]) + more


def _split(
    records: Sequence[Mapping[str, Any]], entity_key_column: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    envelopes, inputs = [], []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise InvalidInputError(f"records[{index}] must be an object of input columns")
        check_text(dict(record), f"records[{index}]")
        values = {key: value for key, value in record.items() if key not in RESERVED}
        entity_key = record.get("entity_key")
        field = "entity_key"
        if entity_key is None and entity_key_column:
            entity_key, field = record.get(entity_key_column), entity_key_column
        envelopes.append(
            {
                "id": _key(record.get("id"), f"records[{index}].id") or uuid.uuid4().hex,
                "entity_key": _key(entity_key, f"records[{index}].{field}"),
                "event_time": _event_time(record.get("event_time"), index),
            }
        )
        inputs.append(values)
    return envelopes, inputs


def _key(value: Any, where: str) -> str:
    """An id or entity key as text: a string or a whole number, of at most ``MAX_KEY`` characters."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInputError(
            f"{where} must be text or a whole number, got {type(value).__name__} {value!r:.60}"
        )
    text = str(value)
    if len(text) > MAX_KEY:
        raise InvalidInputError(
            f"{where} has {len(text)} characters; at most {MAX_KEY} are allowed, as for outcome ids"
        )
    return text


def _event_time(value: Any, index: int) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(
            f"records[{index}].event_time {value!r} is not an ISO 8601 time; "
            "send e.g. 2026-03-03T12:00:00Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _plain_score(value: Any) -> float | list[float] | None:
    if isinstance(value, np.ndarray):
        return [float(item) for item in value]
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _numeric(score: float | list[float] | None) -> float | None:
    return score if isinstance(score, float) else None


def _decide(policy: Policy | None, score: Any, entity_key: str) -> Decision | None:
    if policy is None or not isinstance(score, float):
        return None
    return decide(policy, score, entity_key or "")


@dataclass(frozen=True, slots=True)
class _Verdict:
    """The decision served: the policy's, unless a suspension takes it over."""

    action: str | None
    intended_action: str | None
    holdout: bool
    review: bool
    reason: str | None
    suspension: Suspension | None = None


def _verdict(decision: Decision | None, suspension: Suspension | None) -> _Verdict:
    intended = decision.intended_action if decision else None
    holdout = bool(decision and decision.holdout)
    # The holdout does not use the model: held-out entities keep it, so uplift stays measurable.
    if suspension is not None and not holdout:
        reason = suspension.review_reason
        if suspension.mode == "fallback":
            return _Verdict(suspension.fallback_action, intended, False, False, reason, suspension)
        return _Verdict(REVIEW_ACTION, intended, False, True, reason, suspension)
    if decision is None:
        return _Verdict(None, None, False, False, None)
    why = "review band" if decision.review else None
    return _Verdict(decision.action, intended, holdout, decision.review, why)


def _prediction_event(
    system: str,
    envelope: dict[str, Any],
    inputs: dict[str, Any],
    result: PredictionResult,
    verdict: _Verdict,
    latency_ms: float,
    received: datetime,
) -> dict[str, Any]:
    output: Any = result.score
    if verdict.suspension is not None:
        output = {"output": result.score, "suspended": suspension_marker(verdict.suspension)}
    return {
        "kind": "prediction",
        "system": system,
        "id": result.id,
        "event_time": envelope["event_time"] or received,
        "entity_key": envelope["entity_key"],
        "model_version": result.model_version,
        "inputs": json.dumps(inputs, default=str),
        "score": _numeric(result.score),
        "output": json.dumps(output),
        "decision": result.decision,
        "holdout": result.holdout,
        "intended_action": verdict.intended_action,
        "latency_ms": latency_ms,
        "violations": json.dumps(result.violations) if result.violations else None,
    }
