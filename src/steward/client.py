"""The Python client of a Steward server, and a logger that never blocks the caller.

>>> client = Client("http://127.0.0.1:8000", token="stw_...")       # doctest: +SKIP
>>> client.predict("churn", [{"tenure": 3, "Contract": "Month-to-month"}])  # doctest: +SKIP

Teams that serve their model elsewhere log each prediction with ``BatchingLogger``: ``log()`` puts the
record on a bounded in-memory queue and returns at once; a background thread sends batches to
``/predictions:log``. When the server is slow or down the queue fills, and records past its size are
dropped and counted (``dropped``), never waited on: the caller's request path must not stall on
monitoring. ``close()`` (or leaving the ``with`` block) flushes what is queued. The same logger sends
LLM calls (``records="llm_calls"``, to ``/llm-calls:log``) for ``steward.llm.instrument``; ``put()``
queues a record that is already in its final shape.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from steward._util.templates import render_messages
from steward.errors import (
    ContractViolationError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    PromptUnavailableError,
    StewardError,
    StoreError,
    UnauthenticatedError,
)

__all__ = ["BatchingLogger", "Client", "Prompt"]

logger = logging.getLogger(__name__)


class Client:
    """Calls a Steward server; errors come back as the same ``StewardError`` types the server raised.

    ``token`` is an API token (``steward tokens create``); without one, the ``STEWARD_TOKEN``
    environment variable's, if set. A ``base_url`` that is not an http(s) URL, a ``timeout`` that is
    not a positive number of seconds or a ``token`` that is not a string raises
    ``InvalidInputError`` here, not on the first call. ``docs/client.md`` describes every method.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        prompt_max_staleness: float = 60.0,
    ) -> None:
        _check_client_arguments(base_url, token, timeout)
        _check_staleness(prompt_max_staleness)
        token = token if token is not None else os.environ.get("STEWARD_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=base_url, timeout=timeout, transport=transport, headers=headers
        )
        self.prompt_max_staleness = prompt_max_staleness
        self._prompts: dict[tuple[str, str | None, str], tuple[Prompt, float]] = {}
        self._refreshing: set[tuple[str, str | None, str]] = set()
        self._prompt_lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def predict(self, system: str, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Score records with the system's champion; one result per record."""
        body = self._post(f"/v1/systems/{system}/predict", {"records": list(records)})
        return list(body["predictions"])

    def log_predictions(self, system: str, predictions: Sequence[Mapping[str, Any]] | Any) -> int:
        """Log predictions made elsewhere; returns how many the server stored.

        ``predictions`` is a list of dicts (sent as JSON), or a frame (a pyarrow Table or
        RecordBatch, a pandas or polars DataFrame) with one row per prediction, sent as an Arrow
        IPC stream: the faster way to log many. A frame's columns are the envelope (``id``,
        ``entity_key``, ``event_time``, ``score``, ``output``, ``decision``, ``holdout``,
        ``model_version``, ``latency_ms``, each optional) and the inputs, beside them or as one
        struct column ``inputs``.

        Example::

            client.log_predictions("churn", [{"id": "p1", "score": 0.8, "inputs": {"tenure": 3}}])
            client.log_predictions("churn", frame)  # id, score, ... and one column per input
        """
        path = f"/v1/systems/{system}/predictions:log"
        if isinstance(predictions, Sequence) and not isinstance(predictions, str | bytes):
            body = self._post(path, {"predictions": [_jsonable(item) for item in predictions]})
        else:
            body = self._post(path, content=_arrow_stream(predictions), content_type=_ARROW_STREAM)
        return int(body["accepted"])

    def log_outcomes(self, system: str, outcomes: Sequence[Mapping[str, Any]]) -> list[str]:
        """Send later truth or business results; returns the stored outcome ids."""
        body = self._post(
            f"/v1/systems/{system}/outcomes", {"outcomes": [_jsonable(item) for item in outcomes]}
        )
        return list(body["ids"])

    def approve(self, approval_id: int, note: str = "") -> dict[str, Any]:
        """Approve a pending promotion (the approver role's); returns the decided approval."""
        return self._post(f"/v1/approvals/{approval_id}:approve", {"note": note})

    def reject(self, approval_id: int, note: str = "") -> dict[str, Any]:
        """Reject a pending promotion (the approver role's); returns the decided approval."""
        return self._post(f"/v1/approvals/{approval_id}:reject", {"note": note})

    def prompt(
        self,
        name: str,
        *,
        label: str = "production",
        system: str | None = None,
        max_staleness: float | None = None,
        fallback: Mapping[str, Any] | None = None,
    ) -> Prompt:
        """The prompt version ``label`` points at, never older than ``max_staleness`` seconds.

        A copy fetched less than half the bound ago is served as is; an older one within the bound
        is served while a background thread refreshes it; past the bound the server is asked and
        the caller waits. A label moved or removed on the server is therefore never served past
        the bound. When no fresh copy can be had (the server unreachable or failing, the label
        gone) this raises ``PromptUnavailableError`` (``NotFoundError`` for a label or prompt that
        does not exist), or, given ``fallback`` (a mapping with ``messages`` or ``template``),
        returns that with ``source == "fallback"`` and the reason.
        """
        bound = self.prompt_max_staleness if max_staleness is None else max_staleness
        _check_staleness(bound)
        key = (name, system, label)
        with self._prompt_lock:
            cached = self._prompts.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[1] <= bound:
            found, fetched_at = cached
            if now - fetched_at > bound / 2:
                self._refresh_in_background(key)
            return replace(found, source="cache", age_seconds=now - fetched_at)
        try:
            return self._fetch_prompt(key)
        except (PromptUnavailableError, NotFoundError) as error:
            if fallback is None:
                raise
            logger.warning("prompt %r: serving the caller's fallback: %s", name, error)
            return Prompt.fallback(name, label, fallback, reason=str(error))

    def _fetch_prompt(self, key: tuple[str, str | None, str]) -> Prompt:
        """Ask the server; keep the answer with the time the question was sent (conservative)."""
        name, system, label = key
        path = f"/v1/systems/{system}/prompts/{name}" if system else f"/v1/prompts/{name}"
        asked_at = time.monotonic()
        try:
            response = self._http.get(path, params={"label": label})
        except httpx.TransportError as error:
            raise PromptUnavailableError(
                f"prompt {name!r} ({label}): cannot reach the Steward server at "
                f"{self._http.base_url} ({error}) and no copy is fresh enough"
            ) from None
        if response.status_code == 404:
            with self._prompt_lock:
                self._prompts.pop(key, None)  # moved away or removed: never serve it again
        if response.status_code >= 500:
            raise PromptUnavailableError(
                f"prompt {name!r} ({label}): the Steward server answered "
                f"{response.status_code} and no copy is fresh enough"
            )
        if response.status_code >= 400:
            raise _error_from(response)
        found = Prompt.from_server(response.json(), label)
        with self._prompt_lock:
            self._prompts[key] = (found, asked_at)
        return found

    def _refresh_in_background(self, key: tuple[str, str | None, str]) -> None:
        with self._prompt_lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)

        def refresh() -> None:
            try:
                self._fetch_prompt(key)
            except StewardError as error:  # the copy expires at its bound; the next call says why
                logger.info("prompt %r: background refresh failed: %s", key[0], error)
            finally:
                with self._prompt_lock:
                    self._refreshing.discard(key)

        threading.Thread(target=refresh, name="steward-prompt-refresh", daemon=True).start()

    def _post(
        self,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        content: bytes | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        try:
            if content is None:
                response = self._http.post(path, json=payload)
            else:
                headers = {"content-type": content_type}
                response = self._http.post(path, content=content, headers=headers)
        except httpx.TransportError as error:
            raise StoreError(
                f"cannot reach the Steward server at {self._http.base_url}: {error}; "
                "check that `steward serve` is running"
            ) from None
        if response.status_code >= 400:
            raise _error_from(response)
        return dict(response.json())


#: The content type of an Arrow IPC stream, the body ``log_predictions`` sends for a frame.
_ARROW_STREAM = "application/vnd.apache.arrow.stream"


def _arrow_stream(frame: Any) -> bytes:
    """A frame (pyarrow, pandas, polars) as the bytes of one Arrow IPC stream."""
    # Imported here: a client that logs JSON does not pay for pyarrow and pandas.
    import pyarrow as pa

    from steward._util.frames import to_arrow_table

    table = pa.Table.from_batches([frame]) if isinstance(frame, pa.RecordBatch) else None
    if table is None:
        table = to_arrow_table(frame, "predictions")
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


@dataclass(frozen=True)
class Prompt:
    """A prompt version as a client holds it; ``render(**variables)`` fills in its messages.

    ``source`` says where it came from: ``server`` (fetched now), ``cache`` (a copy
    ``age_seconds`` old, within the staleness bound) or ``fallback`` (the caller's own, with
    ``reason``); ``version`` is None for a fallback.
    """

    name: str
    label: str
    messages: list[dict[str, str]]
    system: str | None = None
    version: int | None = None
    sha256: str | None = None
    variables: list[str] = field(default_factory=list)
    model: str = ""
    provider: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    output_schema: dict[str, Any] | None = None
    source: str = "server"
    age_seconds: float = 0.0
    reason: str = ""

    def render(self, **variables: Any) -> list[dict[str, str]]:
        """The chat messages with the variables filled in; a declared one missing raises."""
        return render_messages(self.messages, variables, self.variables)

    @classmethod
    def from_server(cls, body: Mapping[str, Any], label: str) -> Prompt:
        spec = body.get("spec") or {}
        return cls(
            name=str(body["prompt"]),
            label=label,
            messages=list(body["messages"]),
            system=body.get("system"),
            version=int(body["version"]),
            sha256=body.get("sha256"),
            variables=list(spec.get("variables") or []),
            model=str(spec.get("model") or ""),
            provider=str(spec.get("provider") or ""),
            parameters=dict(spec.get("parameters") or {}),
            output_schema=spec.get("output_schema"),
        )

    @classmethod
    def fallback(cls, name: str, label: str, given: Mapping[str, Any], *, reason: str) -> Prompt:
        """The caller's own prompt, from ``messages`` or ``template`` (one user message)."""
        if "messages" in given:
            messages = [dict(message) for message in given["messages"]]
        elif "template" in given:
            messages = [{"role": "user", "content": str(given["template"])}]
        else:
            raise InvalidInputError(
                f"the fallback for prompt {name!r} needs 'messages' or 'template'; it has "
                f"{', '.join(map(str, given)) or 'nothing'}"
            )
        return cls(
            name=name,
            label=label,
            messages=messages,
            variables=list(given.get("variables") or []),
            model=str(given.get("model") or ""),
            parameters=dict(given.get("parameters") or {}),
            source="fallback",
            reason=reason,
        )


def _check_staleness(seconds: float) -> None:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise InvalidInputError(
            f"the prompt staleness bound must be a positive number of seconds, got {seconds!r}"
        )


def _check_client_arguments(base_url: object, token: object, timeout: object) -> None:
    """Refuse, at construction, what would otherwise fail on the first call, far from its cause."""
    if not isinstance(base_url, str | httpx.URL):
        raise InvalidInputError(
            f"base_url must be the server's URL as a string, got {type(base_url).__name__} "
            f"{base_url!r}; pass e.g. Client('http://127.0.0.1:8000')"
        )
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as error:
        raise InvalidInputError(f"base_url {str(base_url)!r} is not a URL: {error}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidInputError(
            f"base_url must be an http:// or https:// URL with a host, got {str(base_url)!r}; "
            "pass e.g. Client('http://127.0.0.1:8000')"
        )
    if token is not None and not isinstance(token, str):
        raise InvalidInputError(
            f"token must be a string (an API token from `steward tokens create`), got "
            f"{type(token).__name__}; pass token='stw_...' or leave it out to use STEWARD_TOKEN"
        )
    if isinstance(token, str) and (not token.strip() or token != token.strip()):
        raise InvalidInputError(
            "token is empty or has spaces around it; pass the API token exactly as "
            "`steward tokens create` printed it, or leave it out to use STEWARD_TOKEN"
        )
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise InvalidInputError(
            f"timeout must be a positive number of seconds, got {timeout!r}; e.g. timeout=30"
        )


#: What a ``BatchingLogger`` can send: the route under ``/v1/systems/{system}/``, the field of the
#: request body that holds the batch, and the records' name in messages.
_LOGGED = {
    "predictions": ("predictions:log", "predictions", "predictions"),
    "llm_calls": ("llm-calls:log", "calls", "LLM calls"),
}


class BatchingLogger:
    """Queue records in memory and send them in batches from a background thread.

    ``records`` says which: ``"predictions"`` (the default, queued with ``log()``) or
    ``"llm_calls"`` (queued ready-made with ``put()``, as ``steward.llm.instrument`` does).
    """

    def __init__(
        self,
        client: Client,
        system: str,
        *,
        batch_size: int = 1000,
        flush_seconds: float = 1.0,
        max_queue: int = 100_000,
        records: Literal["predictions", "llm_calls"] = "predictions",
    ) -> None:
        _check_logger_arguments(client, system, batch_size, flush_seconds, max_queue)
        if records not in _LOGGED:
            raise InvalidInputError(
                f"records must be one of {', '.join(map(repr, _LOGGED))}, got {records!r}"
            )
        self.client = client
        self.system = system
        self.records = records
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.dropped = 0
        self.sent = 0
        self.failed = 0
        self.last_error: str | None = None
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="steward-logger", daemon=True)
        self._thread.start()

    def log(
        self,
        inputs: Mapping[str, Any],
        *,
        score: float | None = None,
        decision: str | None = None,
        entity_key: str | None = None,
        model_version: int | None = None,
        id: str | None = None,
        event_time: datetime | None = None,
    ) -> str:
        """Queue one prediction and return its id at once; never blocks, never raises on overload."""
        prediction_id = id or uuid.uuid4().hex
        self.put(
            {
                "id": prediction_id,
                "inputs": dict(inputs),
                "score": score,
                "decision": decision,
                "entity_key": entity_key,
                "model_version": model_version,
                "event_time": event_time or datetime.now(UTC),
            }
        )
        return prediction_id

    def put(self, record: Mapping[str, Any]) -> bool:
        """Queue one record as it will be sent; never blocks. False when the queue was full and
        the record was dropped (and counted in ``dropped``)."""
        try:
            self._queue.put_nowait(dict(record))
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Send everything queued, then stop the thread; say so (a warning) if anything was lost.

        ``sent``, ``failed`` (the server refused or could not be reached) and ``dropped`` (the
        queue was full, or the thread could not finish in ``timeout``) count every record.
        """
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive() or not self._queue.empty():
            self.dropped += sum(1 for item in _drain(self._queue) if item)
        if self.failed or self.dropped:
            logger.warning(
                "BatchingLogger for %r lost %s: %d sent, %d failed to send%s, %d dropped "
                "(queue full or not sent in time)",
                self.system,
                _LOGGED[self.records][2],
                self.sent,
                self.failed,
                f" (last error: {self.last_error})" if self.last_error else "",
                self.dropped,
            )

    def __enter__(self) -> BatchingLogger:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _run(self) -> None:
        batch: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.flush_seconds
        while True:
            try:
                item = self._queue.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                item = {}
            if item is None:
                self._send(batch)
                return
            if item:
                batch.append(item)
            if len(batch) >= self.batch_size or time.monotonic() >= deadline:
                self._send(batch)
                batch = []
                deadline = time.monotonic() + self.flush_seconds

    def _send(self, batch: list[dict[str, Any]]) -> None:
        if not batch:
            return
        route, field_name, noun = _LOGGED[self.records]
        try:
            body = self.client._post(
                f"/v1/systems/{self.system}/{route}",
                {field_name: [_jsonable(item) for item in batch]},
            )
            self.sent += int(body["accepted"])
        except Exception as error:  # the thread must live on, and count what it could not send
            self.failed += len(batch)
            self.last_error = f"{type(error).__name__}: {error}"
            logger.warning("could not log %d %s of %s: %s", len(batch), noun, self.system, error)


def _check_logger_arguments(
    client: object, system: object, batch_size: object, flush_seconds: object, max_queue: object
) -> None:
    """Refuse, at construction, what would make the background thread fail later, silently."""
    if not isinstance(client, Client):
        hint = f"Client({client!r})" if isinstance(client, str) else "Client(url)"
        raise InvalidInputError(
            f"BatchingLogger takes a Client, got {type(client).__name__} {client!r}; pass {hint}"
        )
    if not isinstance(system, str) or not system:
        raise InvalidInputError(f"system must be a system's name, got {system!r}")
    for name, value, low in (("batch_size", batch_size, 1), ("max_queue", max_queue, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidInputError(f"{name} must be a whole number >= {low}, got {value!r}")
    if isinstance(flush_seconds, bool) or not isinstance(flush_seconds, int | float):
        raise InvalidInputError(f"flush_seconds must be a number of seconds, got {flush_seconds!r}")
    if not flush_seconds > 0:
        raise InvalidInputError(f"flush_seconds must be > 0, got {flush_seconds!r}")


def _drain(items: queue.Queue[dict[str, Any] | None]) -> list[dict[str, Any] | None]:
    drained = []
    while True:
        try:
            drained.append(items.get_nowait())
        except queue.Empty:
            return drained


def _jsonable(item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in item.items()
    }


def _error_from(response: httpx.Response) -> StewardError:
    try:
        problem = response.json()
        detail = str(problem.get("detail", response.text))
    except ValueError:
        problem, detail = {}, response.text
    if response.status_code == 404:
        return NotFoundError(detail)
    if response.status_code == 401:
        return UnauthenticatedError(detail)
    if response.status_code == 403:
        return ForbiddenError(detail)
    if problem.get("title") == "Contract violation":
        return ContractViolationError(detail, problem.get("errors", []))
    if 400 <= response.status_code < 500:
        return InvalidInputError(detail)
    return StoreError(f"the Steward server answered {response.status_code}: {detail}")
