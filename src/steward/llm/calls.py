"""LLM calls as events: checked at the door, priced once, kept in the durable event log.

A call comes in from the ``openai`` wrapper (``steward.llm.instrument``), from
``POST /v1/systems/{system}/llm-calls:log`` or from an OpenTelemetry ``gen_ai`` span
(``steward.llm.otlp``); all three hand ``record_calls`` the same mapping, in the OpenTelemetry GenAI
vocabulary::

    {"id": "c-1", "event_time": "2026-12-03T10:00:00Z", "prompt": "support-answer",
     "prompt_version": 3, "provider": "openai", "operation": "chat",
     "request_model": "gpt-4o-mini", "response_model": "gpt-4o-mini-2024-07-18",
     "input_tokens": 812, "cache_read_tokens": 512, "cache_creation_tokens": 0,
     "output_tokens": 96, "reasoning_tokens": 0, "finish_reasons": ["stop"],
     "latency_ms": 640.0, "ttft_ms": 180.0, "error": null,
     "input_text": "...", "output_text": "..."}

``input_tokens`` include the cached ones and ``output_tokens`` the reasoning ones, as OpenAI and the
GenAI conventions count them. The cost is computed here, once, with the prices valid at the call's
time (``steward.llm.cost``), and stored with the source of the price; a call whose model has no
price is stored as unpriced (``cost`` null, ``priced`` false), never as free. The texts are kept,
replaced by their SHA-256, or dropped, per the system's ``call_text`` setting.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from steward.data.events import EventLog
from steward.errors import InvalidInputError

__all__ = ["MAX_CALLS", "MAX_TOKENS", "CallIn", "prepare_calls", "record_calls"]

#: At most this many calls in one request.
MAX_CALLS = 10_000
#: No call has more tokens than this (it also keeps counts inside the event log's int64).
MAX_TOKENS = 10**12
TextPolicy = Literal["keep", "hash", "drop"]


class CallIn(BaseModel):
    """One call as a caller reports it; unknown fields are refused, names in the GenAI vocabulary."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, min_length=1, max_length=200)
    event_time: datetime | None = None
    #: Whom the call was for (a user or session id), so an erasure request finds it.
    entity_key: str | None = Field(default=None, max_length=200)
    prompt: str | None = Field(default=None, max_length=200)
    prompt_version: int | None = Field(default=None, ge=1)
    provider: str = Field(default="", max_length=200)
    operation: str = Field(default="chat", max_length=50)
    request_model: str = Field(min_length=1, max_length=200)
    response_model: str | None = Field(default=None, max_length=200)
    input_tokens: int = Field(default=0, ge=0, le=MAX_TOKENS)
    cache_read_tokens: int = Field(default=0, ge=0, le=MAX_TOKENS)
    cache_creation_tokens: int = Field(default=0, ge=0, le=MAX_TOKENS)
    output_tokens: int = Field(default=0, ge=0, le=MAX_TOKENS)
    reasoning_tokens: int = Field(default=0, ge=0, le=MAX_TOKENS)
    finish_reasons: list[str] = Field(default_factory=list)
    latency_ms: float | None = Field(default=None, ge=0)
    ttft_ms: float | None = Field(default=None, ge=0)
    error: str | None = Field(default=None, max_length=2_000)
    input_text: str | None = None
    output_text: str | None = None
    trace_id: str | None = Field(default=None, max_length=64)
    span_id: str | None = Field(default=None, max_length=32)

    @field_validator("event_time")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    def check_counts(self, where: str) -> None:
        """Cached tokens are part of the input, reasoning tokens part of the output."""
        cached = self.cache_read_tokens + self.cache_creation_tokens
        if cached > self.input_tokens:
            raise InvalidInputError(
                f"{where}: cache_read_tokens + cache_creation_tokens ({cached}) exceed "
                f"input_tokens ({self.input_tokens}); input_tokens count the cached tokens too "
                "(as OpenAI's prompt_tokens do)"
            )
        if self.reasoning_tokens > self.output_tokens:
            raise InvalidInputError(
                f"{where}: reasoning_tokens ({self.reasoning_tokens}) exceed output_tokens "
                f"({self.output_tokens}); output_tokens count the reasoning tokens too"
            )


def prepare_calls(
    system: str,
    calls: Sequence[Mapping[str, Any] | CallIn],
    *,
    prices: Any,
    text: TextPolicy = "keep",
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The ``llm_call`` events for ``calls``: checked, priced with ``prices`` (a ``PriceBook``)."""
    if len(calls) > MAX_CALLS:
        raise InvalidInputError(
            f"{len(calls)} calls in one request; send at most {MAX_CALLS} at a time"
        )
    received = now or datetime.now(UTC)
    events = []
    for index, raw in enumerate(calls):
        call = raw if isinstance(raw, CallIn) else _parse(raw, index)
        call.check_counts(f"call #{index} (id {call.id!r})")
        at = call.event_time or received
        priced = prices.cost(
            provider=call.provider or None,
            model=call.response_model or call.request_model,
            at=at,
            input_tokens=call.input_tokens,
            cache_read_tokens=call.cache_read_tokens,
            cache_creation_tokens=call.cache_creation_tokens,
            output_tokens=call.output_tokens,
            reasoning_tokens=call.reasoning_tokens,
        )
        data = call.model_dump(exclude={"event_time"})
        data.update(
            kind="llm_call",
            system=system,
            id=call.id or _call_id(call),
            event_time=at,
            cost=priced.cost,
            priced=priced.priced,
            price_source=priced.source,
            input_text=_text(call.input_text, text),
            output_text=_text(call.output_text, text),
        )
        events.append(data)
    return events


def record_calls(
    events: EventLog,
    system: str,
    calls: Sequence[Mapping[str, Any] | CallIn],
    *,
    prices: Any,
    text: TextPolicy = "keep",
) -> list[dict[str, Any]]:
    """Check, price and append ``calls``; returns once they are durable (fsynced)."""
    prepared = prepare_calls(system, calls, prices=prices, text=text)
    events.append(prepared)
    return prepared


def _parse(raw: Mapping[str, Any], index: int) -> CallIn:
    if not isinstance(raw, Mapping):
        raise InvalidInputError(f"call #{index} is {type(raw).__name__}, not an object")
    try:
        return CallIn.model_validate(dict(raw))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        reason = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        raise InvalidInputError(
            f"call #{index} (id {raw.get('id')!r}): {where}: {reason} "
            f"(got {first.get('input')!r}); see docs/llm.md for the fields of a call"
        ) from None


def _call_id(call: CallIn) -> str:
    """A span's own id when it came from a trace (so a resent span is the same call), else new."""
    if call.trace_id and call.span_id:
        return f"{call.trace_id}-{call.span_id}"
    return uuid.uuid4().hex


def _text(value: str | None, policy: TextPolicy) -> str | None:
    if value is None or policy == "keep":
        return value
    if policy == "hash":
        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return None
