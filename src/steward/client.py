"""The Python client of a Steward server, and a logger that never blocks the caller.

>>> client = Client("http://127.0.0.1:8000", token="stw_...")       # doctest: +SKIP
>>> client.predict("churn", [{"tenure": 3, "Contract": "Month-to-month"}])  # doctest: +SKIP

Teams that serve their model elsewhere log each prediction with ``BatchingLogger``: ``log()`` puts the
record on a bounded in-memory queue and returns at once; a background thread sends batches to
``/predictions:log``. When the server is slow or down the queue fills, and records past its size are
dropped and counted (``dropped``), never waited on: the caller's request path must not stall on
monitoring. ``close()`` (or leaving the ``with`` block) flushes what is queued.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from steward.errors import (
    ContractViolationError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    StewardError,
    StoreError,
    UnauthenticatedError,
)

__all__ = ["BatchingLogger", "Client"]

logger = logging.getLogger(__name__)


class Client:
    """Calls a Steward server; errors come back as the same ``StewardError`` types the server raised.

    ``token`` is an API token (``steward tokens create``); without one, the ``STEWARD_TOKEN``
    environment variable's, if set.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        token = token if token is not None else os.environ.get("STEWARD_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=base_url, timeout=timeout, transport=transport, headers=headers
        )

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

    def log_predictions(self, system: str, predictions: Sequence[Mapping[str, Any]]) -> int:
        """Log predictions made elsewhere; returns how many the server stored."""
        body = self._post(
            f"/v1/systems/{system}/predictions:log",
            {"predictions": [_jsonable(item) for item in predictions]},
        )
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

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._http.post(path, json=payload)
        except httpx.TransportError as error:
            raise StoreError(
                f"cannot reach the Steward server at {self._http.base_url}: {error}; "
                "check that `steward serve` is running"
            ) from None
        if response.status_code >= 400:
            raise _error_from(response)
        return dict(response.json())


class BatchingLogger:
    """Queue predictions in memory and send them in batches from a background thread."""

    def __init__(
        self,
        client: Client,
        system: str,
        *,
        batch_size: int = 1000,
        flush_seconds: float = 1.0,
        max_queue: int = 100_000,
    ) -> None:
        _check_logger_arguments(client, system, batch_size, flush_seconds, max_queue)
        self.client = client
        self.system = system
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
        record = {
            "id": prediction_id,
            "inputs": dict(inputs),
            "score": score,
            "decision": decision,
            "entity_key": entity_key,
            "model_version": model_version,
            "event_time": event_time or datetime.now(UTC),
        }
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1
        return prediction_id

    def close(self, timeout: float = 30.0) -> None:
        """Send everything queued, then stop the thread; say so (a warning) if anything was lost.

        ``sent``, ``failed`` (the server refused or could not be reached) and ``dropped`` (the
        queue was full, or the thread could not finish in ``timeout``) count every prediction.
        """
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive() or not self._queue.empty():
            self.dropped += sum(1 for item in _drain(self._queue) if item)
        if self.failed or self.dropped:
            logger.warning(
                "BatchingLogger for %r lost predictions: %d sent, %d failed to send%s, %d dropped "
                "(queue full or not sent in time)",
                self.system,
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
        try:
            self.sent += self.client.log_predictions(self.system, batch)
        except Exception as error:  # the thread must live on, and count what it could not send
            self.failed += len(batch)
            self.last_error = f"{type(error).__name__}: {error}"
            logger.warning("could not log %d predictions of %s: %s", len(batch), self.system, error)


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
