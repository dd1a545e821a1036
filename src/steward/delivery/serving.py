"""The hot path: contract check, champion model, policy, one durable append.

``Service`` is what the HTTP server calls. Per system it keeps a ``Runtime`` (``delivery/runtime.py``)
and the loaded champion, canary and shadow models. No request reads the store once its system is
served: a thread checks every ``refresh_seconds`` (setting ``serving_refresh_ms``, 250 ms), in one
small read, whether an alias, the open suspension, the contract or the policy changed, re-reads
what did, loads a newly routed version, then switches requests to it. So a promotion or suspension
made through any server reaches every server well within a second. A suspended decision says so
in the response (``suspended``, ``reason``) and in the logged event (its ``output`` becomes
``{"output": ..., "suspended": {"id", "mode", "reason"}}``). Shadow models score the same records on
a background thread, off the hot path, and their scores are logged as ``shadow`` events.

Each system has one batch worker (``steward.delivery.batching``), so its models run one call at a
time instead of fighting over the interpreter lock. Requests that arrive together are served as
one batch: each request's records are checked against the compiled contract alone (a rejected
request fails alone), the rows are scored with one model call per version and input shape, each
record is decided by the policy, and the whole batch's events go to the log in one append (one
fsync). Each request gets exactly what it would get alone: requests are batched only when their
records have the same columns and value types, and a request whose rows make a batched call or
append fail is retried alone, so it fails alone.

>>> service = Service(steward, EventLog(steward.settings.events_dir))  # doctest: +SKIP
>>> service.predict("churn", [{"tenure": 3, ...}])                     # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from steward._util.text import check_text
from steward.data.contracts import Violation, check_record
from steward.data.contracts.personal import protect_record, protect_violations, workspace_secret
from steward.data.events import EventLog
from steward.data.events.schemas import ATTRIBUTES_KEY, check_attributes
from steward.delivery.batching import Batcher, NativeThreads
from steward.delivery.runtime import Marker, Runtime, keep_current, read_markers, read_runtime
from steward.delivery.suspension import Suspension, suspension_marker
from steward.errors import (
    ContractViolationError,
    InvalidInputError,
    NotFoundError,
    StoreError,
)
from steward.model.flavors import LoadedModel
from steward.model.policy import REVIEW_ACTION, Decision, Policy, decide
from steward.workspace import Workspace

__all__ = ["PredictionResult", "Runtime", "Service"]

logger = logging.getLogger(__name__)

RESERVED = ("id", "entity_key", "event_time")
#: The longest prediction id or entity key accepted (the same cap as outcome ids).
MAX_KEY = 200
#: Batches of a model version scored both together and request by request, to check they agree.
BATCH_CHECKS = 3

Records = Sequence[Mapping[str, Any]]
Attributes = Sequence[Mapping[str, Any] | None] | None
_Submission = tuple[Records, Attributes]


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


class Service:
    """Scores records for any system of a workspace and logs every prediction durably."""

    def __init__(
        self,
        steward: Workspace,
        events: EventLog,
        *,
        refresh_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_batch_records: int | None = None,
        max_wait_ms: float | None = None,
    ) -> None:
        settings = steward.settings
        self.steward = steward
        self.events = events
        #: Seconds between two checks for changes; 0 reads the store on every call (for tests).
        self.refresh_seconds = (
            settings.serving_refresh_ms / 1000 if refresh_seconds is None else refresh_seconds
        )
        self.max_batch_records = (
            settings.batch_max_records if max_batch_records is None else max_batch_records
        )
        self.max_wait_ms = settings.batch_max_wait_ms if max_wait_ms is None else max_wait_ms
        self._batchers: dict[str, Batcher[_Submission, Any]] = {}
        self._secret: bytes | None = None
        # Per (system, version): batches checked to score as alone, or -1 once one did not.
        self._batch_checks: dict[tuple[str, int], int] = {}
        self._clock = clock
        self._runtimes: dict[str, Runtime] = {}  # what requests are served with
        self._seen: dict[str, Runtime] = {}  # what was last read; ahead while a version loads
        self._models: dict[tuple[str, int], LoadedModel] = {}
        self._threads = NativeThreads()  # a batch's model call runs on one OpenMP thread
        self._lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._closed = False
        self._shadow_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="steward-shadow")
        self._watcher: threading.Thread | None = None
        self._stopping = threading.Event()
        self._store_away = False
        self.on_prediction: Callable[[str, int, float, list[Violation]], None] | None = None

    def close(self) -> None:
        """Serve what is queued, stop the batch workers, and let shadow scoring finish."""
        with self._lock:
            self._closed = True
            self._stopping.set()
            batchers, self._batchers = list(self._batchers.values()), {}
        for batcher in batchers:
            batcher.close()
        if self._watcher is not None:
            self._watcher.join(timeout=30)
        self._shadow_pool.shutdown(wait=True)

    # Runtime state

    def start(self) -> None:
        """Keep every served runtime current from a thread of its own (``refresh``), until
        ``close``; the server's lifespan calls this. Without it, ``runtime`` checks the store
        itself, at most once per ``refresh_seconds``."""
        with self._lock:
            if self._watcher is None and not self._closed:
                arguments = (weakref.ref(self), self._stopping)
                self._watcher = threading.Thread(
                    target=keep_current, args=arguments, name="steward-refresh", daemon=True
                )
                self._watcher.start()

    def runtime(self, system: str) -> Runtime:
        """The runtime requests of ``system`` are served with.

        The first call reads it from the store (an unknown system fails here). After that, once
        ``start`` ran, no call reads the store; before, a call checks it once per
        ``refresh_seconds``; with ``refresh_seconds`` 0, every call reads it.
        """
        runtime = self._runtimes.get(system)
        if runtime is None or self.refresh_seconds <= 0:
            return self._read(system)
        if self._watcher is None and self._clock() - runtime.asked_at > self.refresh_seconds:
            runtime.asked_at = self._clock()  # once per refresh, even while the store is away
            self.refresh([system])
            return self._runtimes.get(system) or self._read(system)
        return runtime

    def seen(self) -> list[tuple[Runtime, float]]:
        """Each served system as this server last read it, and the seconds since it last found it
        current in the store; ``/metrics`` exports both (``steward_serving_*``)."""
        now = self._clock()
        return [
            (runtime, max(now - runtime.checked_at, 0.0)) for runtime in list(self._seen.values())
        ]

    def refresh(self, systems: Sequence[str] | None = None) -> list[str]:
        """Check once whether any served system changed in the store; reload those that did.

        One small read covers every system (``read_markers``); a whole runtime is read only for a
        system whose marker moved. The new runtime is ``seen`` at once; its champion and canary
        are loaded here, off the request path, and then requests are served with it. The watcher
        thread calls this every ``refresh_seconds``. Returns the systems that changed.
        """
        systems = list(self._seen) if systems is None else systems
        if not systems or self._closed:
            return []
        now = self._clock()
        try:
            markers = read_markers(self.steward.store, systems)
        except Exception:  # the store is away: serve what was last read, say so once, try again
            if not self._store_away:
                logger.warning("cannot check the store for changes", exc_info=True)
            self._store_away = True
            return []
        self._store_away = False
        changed = []
        for system in systems:
            known = self._seen.get(system)
            if known is not None and system in markers and markers[system] == known.marker:
                known.checked_at = now
            elif known is not None and self._reload(system, markers.get(system), now):
                changed.append(system)
        return changed

    def _read(self, system: str) -> Runtime:
        with self._lock:
            marker = read_markers(self.steward.store, [system]).get(system)
            runtime = read_runtime(self.steward, system, marker, self._seen.get(system))
            runtime.checked_at = runtime.asked_at = self._clock()
            self._seen[system] = self._runtimes[system] = runtime
        return runtime

    def _reload(self, system: str, marker: Marker | None, now: float) -> bool:
        try:
            fresh = read_runtime(self.steward, system, marker, self._seen.get(system))
        except NotFoundError:  # gone: the next request finds out, and says so
            with self._lock:
                self._seen.pop(system, None)
                self._runtimes.pop(system, None)
            return False
        except Exception:
            logger.warning("could not refresh the runtime of %r", system, exc_info=True)
            return False
        fresh.checked_at = fresh.asked_at = now
        self._seen[system] = fresh
        for version in fresh.routed():
            try:
                self.model(system, version)
            except Exception:  # the request path tries again and answers with the cause
                logger.warning("could not load v%s of %r", version, system, exc_info=True)
        with self._lock:
            if self._seen.get(system) is fresh:
                self._runtimes[system] = fresh
        return True

    def model(self, system: str, version: int) -> LoadedModel:
        """The loaded model version, loaded once even when many threads ask at the same time."""
        key = (system, version)
        model = self._models.get(key)
        if model is None:
            with self._model_lock:
                model = self._models.get(key)
                if model is None:
                    model = self.steward.load_model(system, version)
                    self._models[key] = model
                    self._threads.forget()  # it may have brought a native library
        return model

    # The hot path

    def predict(
        self, system: str, records: Records, *, attributes: Attributes = None
    ) -> list[PredictionResult]:
        """Check, score, decide and durably log ``records``; return one result per record.

        The records join the system's next batch (``steward.delivery.batching``): requests that
        arrive together share one model call and one durable append, and each gets exactly the
        results it would get alone. ``attributes``, one mapping per record, are the protected
        attributes of ``fairness.attributes``: logged with the prediction, never given to the model.
        """
        results: list[PredictionResult] = self._batcher(system).call(
            (records, attributes), max(len(records), 1)
        )
        return results

    async def predict_async(
        self, system: str, records: Records, *, attributes: Attributes = None
    ) -> list[PredictionResult]:
        """``predict`` for an event loop: waits for the batch without holding a thread.

        Example::

            results = await service.predict_async("churn", [{"tenure": 3, ...}])
        """
        if system in self._batchers:
            future = self.submit(system, records, attributes=attributes)
        else:  # the first request reads the system from the store: not on the event loop
            future = await asyncio.to_thread(
                partial(self.submit, system, records, attributes=attributes)
            )
        results: list[PredictionResult] = await asyncio.wrap_future(future)
        return results

    def submit(
        self, system: str, records: Records, *, attributes: Attributes = None
    ) -> Future[Any]:
        """Queue ``records`` for the system's batch worker; the future gets their results.

        ``predict`` waits on it; an ``async`` caller awaits ``asyncio.wrap_future`` of it.
        """
        return self._batcher(system).submit((records, attributes), max(len(records), 1))

    def _batcher(self, system: str) -> Batcher[_Submission, Any]:
        batcher = self._batchers.get(system)
        if batcher is None:
            if self._closed:
                raise StoreError("the prediction service is closed; the server is stopping")
            self.runtime(system)  # an unknown system fails here, before it gets a worker
            with self._lock:
                batcher = self._batchers.get(system)
                if batcher is None:
                    batcher = Batcher(
                        partial(self._serve_batch, system),
                        name=system,
                        max_records=self.max_batch_records,
                        max_wait=self.max_wait_ms / 1000,
                    )
                    self._batchers[system] = batcher
        return batcher

    def _serve_batch(
        self, system: str, batch: list[_Submission]
    ) -> list[list[PredictionResult] | BaseException]:
        """Serve the requests of one batch: one model call per version, one durable append."""
        runtime = self.runtime(system)
        requests = [self._prepare(runtime, *submission) for submission in batch]
        live = [request for request in requests if request.error is None]
        self._score_batch(runtime, live)
        ready = [request for request in live if request.error is None]
        for request in ready:
            self._finish(runtime, request)
        self._commit([request for request in ready if request.error is None])
        served = [request for request in ready if request.error is None]
        if self.on_prediction is not None:
            for request in served:
                for index, result in enumerate(request.results):
                    self.on_prediction(
                        system,
                        result.model_version,
                        request.latencies[index],
                        request.violations[index],
                    )
        self._shadow(runtime, served)
        return [request.error or request.results for request in requests]

    def _prepare(self, runtime: Runtime, records: Records, attributes: Attributes) -> _Request:
        """Split and check one request's records, and route each to a version."""
        try:
            if runtime.champion is None:
                raise NotFoundError(
                    f"system {runtime.name!r} has no champion to serve; register a version and "
                    f"run `steward models alias {runtime.name} champion VERSION`"
                )
            beside = check_attributes(runtime.name, runtime.attributes, attributes, records)
            envelopes, inputs = _split(records, runtime.entity_key_column)
            violations = self._check(runtime, inputs)
        except Exception as error:
            return _Request([], [], [], [], datetime.now(UTC), error=error)
        routes = [runtime.route(envelope["entity_key"]) for envelope in envelopes]
        return _Request(envelopes, inputs, violations, routes, datetime.now(UTC), attributes=beside)

    def _score_batch(self, runtime: Runtime, requests: list[_Request]) -> None:
        """Score every request's rows, one model call per version and input shape."""
        groups: dict[tuple[int, Any], list[tuple[_Request, list[int]]]] = {}
        for request in requests:
            request.scores = [None] * len(request.inputs)
            request.latencies = [0.0] * len(request.inputs)
            for version in sorted({v for v in request.routes if v is not None}):
                rows = [index for index, route in enumerate(request.routes) if route == version]
                shape = _shape([request.inputs[index] for index in rows]) or id(request)
                groups.setdefault((version, shape), []).append((request, rows))
        for (version, _), members in sorted(groups.items(), key=lambda item: item[0][0]):
            members = [(request, rows) for request, rows in members if request.error is None]
            if len(members) > 1 and self._batched(runtime, version, members):
                continue
            for member in members:  # alone: a request that cannot be scored fails only itself
                try:
                    self._assign([member], *self._call(runtime, version, [member]))
                except Exception as error:
                    member[0].error = error

    def _batched(
        self, runtime: Runtime, version: int, members: list[tuple[_Request, list[int]]]
    ) -> bool:
        """Score ``members`` in one call if that gives each the scores it gets alone.

        The first ``BATCH_CHECKS`` batches of a version are also scored request by request and
        compared: a model whose scores depend on the batch (a BLAS dot product can differ in
        the last bit) is scored request by request from then on.
        """
        key = (runtime.name, version)
        checked = self._batch_checks.get(key, 0)
        if checked < 0:
            return False
        try:
            scores, elapsed_ms = self._call(runtime, version, members)
            if checked < BATCH_CHECKS:
                alone = [
                    score
                    for member in members
                    for score in self._call(runtime, version, [member])[0]
                ]
                self._batch_checks[key] = checked + 1 if alone == scores else -1
                if alone != scores:
                    logger.info(
                        "v%s of %s scores rows differently in a batch; scoring requests alone",
                        version,
                        runtime.name,
                    )
                    return False
        except Exception:
            return False  # some request cannot be scored: each is scored alone, to fail alone
        self._assign(members, scores, elapsed_ms)
        return True

    def _call(
        self, runtime: Runtime, version: int, members: list[tuple[_Request, list[int]]]
    ) -> tuple[list[Any], float]:
        """One model call over the members' rows: plain scores, and milliseconds per row.

        The time counts building the frame the model takes, as every caller of the model pays it.
        """
        started = time.perf_counter()
        frame = pd.DataFrame([request.inputs[index] for request, rows in members for index in rows])
        model = self.model(runtime.name, version)
        with self._threads.limited(len(frame)):
            predicted = _score(model, frame, runtime, version)
        elapsed_ms = (time.perf_counter() - started) * 1000 / max(len(frame), 1)
        return [_plain_score(value) for value in predicted], elapsed_ms

    @staticmethod
    def _assign(
        members: list[tuple[_Request, list[int]]], scores: list[Any], elapsed_ms: float
    ) -> None:
        position = 0
        for request, rows in members:
            for index in rows:
                request.scores[index] = scores[position]
                request.latencies[index] = elapsed_ms
                position += 1

    def _finish(self, runtime: Runtime, request: _Request) -> None:
        """Decide for each record of a scored request; build its results and events."""
        personal = runtime.contract.personal if runtime.contract else {}
        try:
            if personal and self._secret is None:  # made on first use, mode 0600
                self._secret = workspace_secret(self.steward.settings.store_dir)
            for index, envelope in enumerate(request.envelopes):
                score = request.scores[index]
                decision = _decide(runtime.policy, score, envelope["entity_key"])
                verdict = _verdict(decision, runtime.suspension)
                result = PredictionResult(
                    id=envelope["id"],
                    model_version=int(request.routes[index] or 0),
                    score=score,
                    decision=verdict.action,
                    holdout=verdict.holdout,
                    review=verdict.review,
                    violations=_shown(request.violations[index], personal),
                    suspended=verdict.suspension is not None,
                    reason=verdict.reason,
                )
                request.results.append(result)
                logged = protect_record(request.inputs[index], personal, self._secret or b"")
                if request.attributes is not None and request.attributes[index]:
                    logged[ATTRIBUTES_KEY] = request.attributes[index]
                request.events.append(
                    _prediction_event(
                        runtime.name,
                        envelope,
                        logged,
                        result,
                        verdict,
                        request.latencies[index],
                        request.received,
                    )
                )
        except Exception as error:
            request.error = error

    def _commit(self, requests: list[_Request]) -> None:
        """Append every request's events at once (one fsync); alone only if that fails."""
        if not requests:
            return
        try:
            self.events.append([event for request in requests for event in request.events])
            return
        except Exception as error:
            if len(requests) == 1:
                requests[0].error = error
                return
        for request in requests:  # all or none failed: find which request it was
            try:
                self.events.append(request.events)
            except Exception as error:
                request.error = error

    def _shadow(self, runtime: Runtime, requests: list[_Request]) -> None:
        """Hand the served records to the shadow models, off the hot path."""
        if not requests:
            return
        shadows = runtime.shadows()
        work = []
        for request in requests:
            versions = [version for version in shadows if version not in set(request.routes)]
            if versions:
                work.append((versions, request.envelopes, request.inputs))
        if work:
            self._shadow_pool.submit(self._score_shadows, runtime.name, runtime.task, work)

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
        work: list[tuple[list[int], list[dict[str, Any]], list[dict[str, Any]]]],
    ) -> None:
        """Score served requests with each shadow version, one call per version and input shape."""
        received = datetime.now(UTC)
        for version in sorted({version for versions, _, _ in work for version in versions}):
            groups: dict[Any, list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]] = {}
            for versions, envelopes, inputs in work:
                if version in versions:
                    groups.setdefault(_shape(inputs) or id(inputs), []).append((envelopes, inputs))
            for members in groups.values():
                try:
                    self._shadow_group(system, task, version, members, received)
                except Exception:
                    if len(members) == 1:  # a failing shadow must never touch the served path
                        logger.exception("shadow v%s of %s failed", version, system)
                        continue
                    for member in members:
                        try:
                            self._shadow_group(system, task, version, [member], received)
                        except Exception:
                            logger.exception("shadow v%s of %s failed", version, system)

    def _shadow_group(
        self,
        system: str,
        task: str,
        version: int,
        members: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]],
        received: datetime,
    ) -> None:
        envelopes = [envelope for group, _ in members for envelope in group]
        frame = pd.DataFrame([record for _, inputs in members for record in inputs])
        model, started = self.model(system, version), time.perf_counter()
        with self._threads.limited(len(frame)):
            predicted = model.predict(frame, task)
        latency = (time.perf_counter() - started) * 1000 / max(len(envelopes), 1)
        # A shadow event carries the id of the prediction it shadows; the log keys shadows by
        # (id, model_version).
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


def _shape(inputs: Sequence[Mapping[str, Any]]) -> tuple[tuple[str, type], ...] | None:
    """The columns and value types all ``inputs`` share, or None when they differ.

    Requests of one shape make the same frame column types alone as together, so batching them
    gives each exactly the scores it would get alone; requests of mixed shapes are scored alone.
    """
    if not inputs:
        return None
    first = inputs[0]
    names, kinds = tuple(first), tuple(map(type, first.values()))
    for record in inputs[1:]:
        if tuple(record) != names or tuple(map(type, record.values())) != kinds:
            return None
    return tuple(zip(names, kinds, strict=True))


@dataclass(slots=True)
class _Request:
    """One request on its way through a batch; ``error`` set means it failed, alone."""

    envelopes: list[dict[str, Any]]
    inputs: list[dict[str, Any]]
    violations: list[list[Violation]]
    routes: list[int | None]
    received: datetime
    scores: list[Any] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    results: list[PredictionResult] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    attributes: list[dict[str, Any]] | None = None
    error: Exception | None = None


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


def _shown(violations: list[Violation], personal: Mapping[str, str]) -> list[dict[str, Any]]:
    """Violations as answered and logged: a personal column's value is not shown."""
    return [violation.to_dict() for violation in protect_violations(violations, personal)]


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
