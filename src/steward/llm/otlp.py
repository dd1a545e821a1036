"""OpenTelemetry traces in, LLM calls out: an application instrumented with OpenTelemetry's GenAI
conventions logs its calls to Steward by pointing its OTLP/HTTP exporter at ``/v1/traces``.

The request is an ``ExportTraceServiceRequest`` in binary protobuf (``application/x-protobuf``)
or in OTLP/JSON (``application/json``: the protobuf JSON mapping with camelCase keys, trace and
span ids as hex strings, enums as integers, 64-bit integers as strings or numbers), plain or
compressed (``Content-Encoding: gzip`` or ``deflate``). ``decode_request`` reads it and refuses a
body that is not such a message with ``MalformedTraceError`` (HTTP 400) naming what is wrong.

Each span that is a model call under the GenAI semantic conventions becomes one call for
``steward.llm.calls.record_calls`` (``read_spans``): a span with ``gen_ai.operation.name``,
``gen_ai.provider.name`` or the older ``gen_ai.system``, except the operations that are not a
call to a model themselves (agents, tools, workflows, retrieval, memory: ``NOT_MODEL_CALLS``),
whose tokens, where given, are the sum of the model calls inside them. Other spans are ignored.
The attributes read (``ATTRIBUTES``) are those of the OpenTelemetry GenAI semantic conventions as
in semantic-conventions 1.44 and the semantic-conventions-genai repository that now holds them::

    gen_ai.provider.name (else gen_ai.system)      -> provider
    gen_ai.operation.name                          -> operation
    gen_ai.request.model / gen_ai.response.model   -> request_model / response_model
    gen_ai.usage.input_tokens (else prompt_tokens) -> input_tokens (the cached ones included)
    gen_ai.usage.cache_read.input_tokens           -> cache_read_tokens
    gen_ai.usage.cache_creation.input_tokens       -> cache_creation_tokens
    gen_ai.usage.output_tokens (else completion_tokens) -> output_tokens (reasoning included)
    gen_ai.usage.reasoning.output_tokens           -> reasoning_tokens
    gen_ai.response.finish_reasons                 -> finish_reasons
    gen_ai.response.time_to_first_chunk (seconds)  -> ttft_ms
    error.type, else the span's error status       -> error
    gen_ai.input.messages / gen_ai.output.messages -> input_text / output_text (as JSON)
    steward.prompt.name (else gen_ai.prompt.name), steward.prompt.version -> prompt, prompt_version
    start time -> event_time; end - start -> latency_ms; trace and span ids -> trace_id, span_id

The messages are also read from a ``gen_ai.client.inference.operation.details`` span event, and
from the older span events ``gen_ai.content.prompt`` (``gen_ai.prompt``) and
``gen_ai.content.completion`` (``gen_ai.completion``). A call's id is ``{trace_id}-{span_id}``, so
a span sent twice is one call.

A span goes to the Steward system named by its ``steward.system`` attribute, else the resource's
``steward.system`` (``OTEL_RESOURCE_ATTRIBUTES=steward.system=support``), else the resource's
``service.name``. ``record_spans`` logs the calls of each system of task ``llm``, priced with its
``prices:`` and kept per its ``call_text``, and counts the others as rejected, with the reason,
for OTLP's ``partial_success``: a span Steward cannot take never fails the rest of the request.

>>> read_spans(decode_request(b"{}", "json"))
[]
"""

from __future__ import annotations

import base64
import json
import math
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from pydantic import ValidationError

from steward.data.events import EventLog
from steward.errors import InvalidInputError, StewardError
from steward.llm.calls import MAX_CALLS, CallIn, record_calls

__all__ = [
    "ATTRIBUTES",
    "COMPRESSIONS",
    "MAX_BODY_BYTES",
    "MAX_TOKENS",
    "MEDIA_TYPES",
    "NOT_MODEL_CALLS",
    "Encoding",
    "MalformedTraceError",
    "Receipt",
    "SpanCall",
    "TraceTooLargeError",
    "call_from_span",
    "decode_request",
    "encode_response",
    "encoding_of",
    "read_spans",
    "record_spans",
]

Encoding = Literal["protobuf", "json"]

#: The request media types OTLP/HTTP uses, and the encoding each names.
MEDIA_TYPES: dict[str, Encoding] = {
    "application/x-protobuf": "protobuf",
    "application/protobuf": "protobuf",
    "application/json": "json",
}
#: The ``Content-Encoding`` values a request may have (OTLP requires gzip; the Python exporter
#: can also send deflate).
COMPRESSIONS = frozenset({"identity", "gzip", "deflate"})
#: The largest request body accepted, after decompression (the server's default body limit).
MAX_BODY_BYTES = 64 * 1024 * 1024

#: The most tokens one count of one call may have (far above any model's window).
MAX_TOKENS = 10**12

#: Where each field of a call comes from: the attributes tried, in order.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "provider": ("gen_ai.provider.name", "gen_ai.system"),
    "operation": ("gen_ai.operation.name",),
    "request_model": ("gen_ai.request.model",),
    "response_model": ("gen_ai.response.model",),
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
    "cache_read_tokens": ("gen_ai.usage.cache_read.input_tokens",),
    "cache_creation_tokens": ("gen_ai.usage.cache_creation.input_tokens",),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
    "reasoning_tokens": ("gen_ai.usage.reasoning.output_tokens",),
    "finish_reasons": ("gen_ai.response.finish_reasons",),
    "ttft_ms": ("gen_ai.response.time_to_first_chunk",),
    "error": ("error.type",),
    "input_text": ("gen_ai.input.messages",),
    "output_text": ("gen_ai.output.messages",),
    "prompt": ("steward.prompt.name", "gen_ai.prompt.name"),
    "prompt_version": ("steward.prompt.version",),
}
#: Any of these makes a span a GenAI span.
GENAI_MARKERS = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.system")
#: GenAI operations that are not one call to a model (their tokens, if any, sum their children's).
NOT_MODEL_CALLS = frozenset(
    {
        "create_agent",
        "invoke_agent",
        "invoke_workflow",
        "execute_tool",
        "plan",
        "retrieval",
        "create_memory",
        "create_memory_store",
        "delete_memory",
        "delete_memory_store",
        "search_memory",
        "update_memory",
        "upsert_memory",
    }
)
SYSTEM_ATTRIBUTE = "steward.system"
DETAILS_EVENT = "gen_ai.client.inference.operation.details"
#: The span events older instrumentations put the texts on, and the attribute holding each.
LEGACY_TEXT_EVENTS = {
    "input_text": ("gen_ai.content.prompt", "gen_ai.prompt"),
    "output_text": ("gen_ai.content.completion", "gen_ai.completion"),
}
_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})
_COUNTS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "output_tokens",
    "reasoning_tokens",
)
_MAX_REASONS = 5
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MalformedTraceError(InvalidInputError):
    """The body is not an ``ExportTraceServiceRequest`` in the encoding it claims (HTTP 400)."""

    status = 400
    title = "Malformed OTLP request"


class TraceTooLargeError(InvalidInputError):
    """The body, once decompressed, is over the limit (HTTP 413)."""

    status = 413
    title = "Payload too large"


@dataclass(frozen=True)
class SpanCall:
    """One GenAI span read as a call: its ``system`` (and where that name came from), and either
    the ``call`` mapping or the ``problem`` that keeps it from being one."""

    where: str
    system: str | None
    system_source: str
    call: dict[str, Any] | None = None
    problem: str | None = None


@dataclass
class Receipt:
    """What ``record_spans`` did: the calls logged per system, and the spans rejected and why."""

    ids: dict[str, list[str]] = field(default_factory=dict)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        """How many calls were logged."""
        return sum(len(ids) for ids in self.ids.values())

    @property
    def error_message(self) -> str:
        """Why spans were rejected, one sentence per reason (the first few), for OTLP clients."""
        if not self.rejected:
            return ""
        counted: dict[str, int] = {}
        for reason in self.reasons:
            counted[reason] = counted.get(reason, 0) + 1
        parts = [f"{n} span(s): {reason}" for reason, n in list(counted.items())[:_MAX_REASONS]]
        more = len(counted) - _MAX_REASONS
        tail = f"; and {more} other reason(s)" if more > 0 else ""
        return f"{self.rejected} GenAI span(s) rejected. " + "; ".join(parts) + tail

    def to_response(self) -> ExportTraceServiceResponse:
        """The OTLP answer: ``partial_success`` set only when spans were rejected."""
        if not self.rejected:
            return ExportTraceServiceResponse()
        partial = ExportTracePartialSuccess(
            rejected_spans=self.rejected, error_message=self.error_message
        )
        return ExportTraceServiceResponse(partial_success=partial)


# -- decoding


def encoding_of(content_type: str) -> Encoding | None:
    """The encoding a ``Content-Type`` header names, or None if OTLP/HTTP has no such encoding.

    >>> encoding_of("application/x-protobuf"), encoding_of("application/json; charset=utf-8")
    ('protobuf', 'json')
    """
    return MEDIA_TYPES.get(content_type.split(";")[0].strip().lower())


def decode_request(
    body: bytes,
    encoding: Encoding,
    *,
    compression: str | None = None,
    max_bytes: int = MAX_BODY_BYTES,
) -> ExportTraceServiceRequest:
    """The ``ExportTraceServiceRequest`` in ``body``, decompressed per ``compression``.

    Raises ``MalformedTraceError`` naming what is wrong, ``TraceTooLargeError`` past ``max_bytes``.

    >>> request = decode_request(b'{"resourceSpans": []}', "json")
    >>> len(request.resource_spans)
    0
    """
    data = _decompress(body, (compression or "identity").strip().lower(), max_bytes)
    if encoding == "protobuf":
        try:
            return ExportTraceServiceRequest.FromString(data)
        except (DecodeError, RecursionError) as error:
            raise MalformedTraceError(
                f"the body is not a protobuf ExportTraceServiceRequest ({error}); send the "
                "message serialised with Content-Type: application/x-protobuf, or OTLP/JSON with "
                "Content-Type: application/json"
            ) from None
    return _from_json(data)


def _decompress(body: bytes, compression: str, max_bytes: int) -> bytes:
    if compression == "identity":
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
        return body
    if compression not in COMPRESSIONS:
        raise MalformedTraceError(
            f"Content-Encoding {compression!r} is not supported; send gzip, deflate or none"
        )
    window = zlib.MAX_WBITS | 16 if compression == "gzip" else zlib.MAX_WBITS
    out, rest = bytearray(), body
    try:
        while rest:  # a gzip body may hold several members, one after the other
            inflater = zlib.decompressobj(window)
            out += inflater.decompress(rest, max_bytes + 1 - len(out))
            if len(out) > max_bytes:
                raise _too_large(max_bytes)
            if not inflater.eof:
                raise MalformedTraceError(f"the {compression} body ends before its end marker")
            rest = inflater.unused_data
    except zlib.error as error:
        raise MalformedTraceError(
            f"the body is not valid {compression} data ({error}); compress the whole body, or "
            "drop the Content-Encoding header"
        ) from None
    return bytes(out)


def _too_large(max_bytes: int) -> TraceTooLargeError:
    return TraceTooLargeError(
        f"the request body is over {max_bytes} bytes once decompressed; export fewer spans per "
        "request (the batch processor's max_export_batch_size)"
    )


def _from_json(data: bytes) -> ExportTraceServiceRequest:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise MalformedTraceError(f"the body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise MalformedTraceError(
            f"the body is a JSON {type(document).__name__}, not an object; OTLP/JSON is an "
            'ExportTraceServiceRequest object such as {"resourceSpans": [...]}'
        )
    try:
        _hex_ids_to_base64(document, "")
        return json_format.ParseDict(
            document, ExportTraceServiceRequest(), ignore_unknown_fields=True
        )
    except json_format.ParseError as error:
        raise MalformedTraceError(f"the body is not an OTLP/JSON trace request: {error}") from None
    except RecursionError:
        raise MalformedTraceError("the body nests JSON too deeply to be OTLP") from None


def _hex_ids_to_base64(node: Any, path: str) -> None:
    """OTLP/JSON writes trace and span ids in hex where protobuf's JSON mapping has base64."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            _hex_ids_to_base64(item, f"{path}[{index}]")
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        where = f"{path}.{key}" if path else key
        if key not in _ID_KEYS:
            _hex_ids_to_base64(value, where)
            continue
        if not isinstance(value, str):
            raise MalformedTraceError(f"{where} is {value!r}; OTLP/JSON ids are hex strings")
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise MalformedTraceError(
                f"{where} is {value!r}, not hex; OTLP/JSON writes trace and span ids as hex "
                "strings (e.g. a trace id of 32 hex digits), not base64"
            ) from None
        node[key] = base64.b64encode(raw).decode("ascii")


def encode_response(response: ExportTraceServiceResponse, encoding: Encoding) -> bytes:
    """``response`` in the request's encoding (OTLP answers in the encoding it was sent).

    >>> encode_response(ExportTraceServiceResponse(), "json")
    b'{}'
    """
    if encoding == "protobuf":
        data: bytes = response.SerializeToString()
        return data
    return json.dumps(json_format.MessageToDict(response), separators=(",", ":")).encode()


# -- spans to calls


def read_spans(request: ExportTraceServiceRequest) -> list[SpanCall]:
    """Each GenAI model-call span of ``request`` as a ``SpanCall``; other spans are left out."""
    found = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                read = _read_span(span, resource)
                if read is not None:
                    found.append(read)
    return found


def _read_span(span: Span, resource: Mapping[str, Any]) -> SpanCall | None:
    attributes = _attributes(span.attributes)
    where = f"span {span.span_id.hex() or '(no id)'} {span.name!r}"
    system, source = _system_of(attributes, resource)
    try:
        call = call_from_span(span, attributes=attributes)
    except InvalidInputError as error:
        return SpanCall(where, system, source, problem=str(error))
    if call is None:
        return None
    return SpanCall(where, system, source, call=call)


def _system_of(
    attributes: Mapping[str, Any], resource: Mapping[str, Any]
) -> tuple[str | None, str]:
    for found, source in (
        (attributes.get(SYSTEM_ATTRIBUTE), f"span attribute {SYSTEM_ATTRIBUTE}"),
        (resource.get(SYSTEM_ATTRIBUTE), f"resource attribute {SYSTEM_ATTRIBUTE}"),
        (resource.get("service.name"), "resource attribute service.name"),
    ):
        if found not in (None, ""):
            return str(found), source
    return None, "no steward.system or service.name attribute"


def call_from_span(
    span: Span, *, attributes: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """The call mapping (``steward.llm.calls``) of a GenAI model-call span; None for any other.

    Raises ``InvalidInputError`` naming the span and the attribute when the span is a GenAI call
    that cannot be read (no model, a token count that is not a number, ids of the wrong length).
    ``attributes`` are the span's, as plain values, if the caller has them already.

    >>> call_from_span(Span(name="GET /orders")) is None
    True
    """
    attributes = _attributes(span.attributes) if attributes is None else attributes
    if not any(marker in attributes for marker in GENAI_MARKERS):
        return None
    where = f"span {span.span_id.hex() or '(no id)'} {span.name!r}"
    operation = _text(attributes, "operation")
    if operation in NOT_MODEL_CALLS:
        return None
    trace_id, span_id = _ids(span, where)
    call: dict[str, Any] = {
        "trace_id": trace_id,
        "span_id": span_id,
        "provider": _text(attributes, "provider") or "",
        "request_model": _text(attributes, "request_model") or _text(attributes, "response_model"),
        "response_model": _text(attributes, "response_model"),
        "finish_reasons": _reasons(attributes),
        "error": _error(attributes, span.status),
        "prompt": _text(attributes, "prompt"),
        "prompt_version": _version(attributes, where),
        **_times(span, attributes),
        **_texts(span, attributes),
    }
    if operation:
        call["operation"] = operation
    if not call["request_model"]:
        raise InvalidInputError(
            f"{where}: no gen_ai.request.model nor gen_ai.response.model; a call is priced by its "
            "model, so the span must name it"
        )
    for name in _COUNTS:
        call[name] = _count(attributes, name, where)
    return call


def _ids(span: Span, where: str) -> tuple[str, str]:
    if len(span.trace_id) != 16 or len(span.span_id) != 8 or not any(span.trace_id):
        raise InvalidInputError(
            f"{where}: trace id {span.trace_id.hex()!r} and span id {span.span_id.hex()!r} must "
            "be 16 and 8 bytes, the trace id not all zero"
        )
    return span.trace_id.hex(), span.span_id.hex()


def _text(attributes: Mapping[str, Any], name: str) -> str | None:
    for key in ATTRIBUTES[name]:
        value = attributes.get(key)
        if value not in (None, ""):
            return value if isinstance(value, str) else json.dumps(value)
    return None


def _count(attributes: Mapping[str, Any], name: str, where: str) -> int:
    for key in ATTRIBUTES[name]:
        if key not in attributes:
            continue
        value = _whole(attributes[key])
        if value is None or not 0 <= value <= MAX_TOKENS:
            raise InvalidInputError(
                f"{where}: {key} is {attributes[key]!r}, not a whole number of tokens from 0 to "
                f"{MAX_TOKENS}"
            )
        return value
    return 0


def _whole(value: Any) -> int | None:
    """``value`` as an int if it is one (an integral float or a string of digits too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _reasons(attributes: Mapping[str, Any]) -> list[str]:
    value = attributes.get(ATTRIBUTES["finish_reasons"][0])
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [str(item) for item in items]


def _error(attributes: Mapping[str, Any], status: Status) -> str | None:
    kind = _text(attributes, "error")
    failed = status.code == Status.STATUS_CODE_ERROR
    if kind is None and not failed:
        return None
    parts = [part for part in (kind, status.message if failed else "") if part]
    return (": ".join(parts) or "error")[:2_000]


def _version(attributes: Mapping[str, Any], where: str) -> int | None:
    key = ATTRIBUTES["prompt_version"][0]
    if attributes.get(key) is None:
        return None
    value = _whole(attributes[key])
    if value is None or value < 1 or isinstance(attributes[key], float):
        raise InvalidInputError(
            f"{where}: {key} is {attributes[key]!r}; it must be a prompt version number (1, 2, ...)"
        )
    return value


def _times(span: Span, attributes: Mapping[str, Any]) -> dict[str, Any]:
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    ttft = attributes.get(ATTRIBUTES["ttft_ms"][0])
    seconds = float(ttft) if isinstance(ttft, int | float) and not isinstance(ttft, bool) else -1.0
    return {
        "event_time": _EPOCH + timedelta(microseconds=start // 1000) if start else None,
        "latency_ms": (end - start) / 1e6 if start and end >= start else None,
        "ttft_ms": seconds * 1000 if math.isfinite(seconds) and seconds >= 0 else None,
    }


def _texts(span: Span, attributes: Mapping[str, Any]) -> dict[str, str | None]:
    """The messages, from the span's attributes, else its details event, else the old events."""
    events = [(event.name, _attributes(event.attributes)) for event in span.events]
    texts: dict[str, str | None] = {}
    for name in ("input_text", "output_text"):
        key = ATTRIBUTES[name][0]
        sources = [attributes]
        sources += [found for event, found in events if event == DETAILS_EVENT]
        legacy_event, legacy_key = LEGACY_TEXT_EVENTS[name]
        sources += [
            {key: found[legacy_key]}
            for event, found in events
            if event == legacy_event and legacy_key in found
        ]
        value = next((source[key] for source in sources if source.get(key) is not None), None)
        texts[name] = _as_json_text(value)
    return texts


def _as_json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _plain(pair.value) for pair in pairs}


def _plain(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_plain(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return getattr(value, kind)


# -- recording


def record_spans(
    events: EventLog,
    request: ExportTraceServiceRequest,
    *,
    declared: Callable[[str], Any],
    prices: Callable[[Any], Any],
) -> Receipt:
    """Log the GenAI calls of ``request`` to their systems; count the spans that cannot be.

    ``declared(name)`` returns a system's ``steward.yaml`` declaration (``SystemConfig``) or raises
    a ``StewardError`` (an unknown system); ``prices(declaration)`` is its ``PriceBook``. Each
    system of task ``llm`` gets its calls, checked, priced and kept per its ``call_text``, durably
    before this returns; a span for a system that is unknown or not of task ``llm``, or that
    cannot be read as a call, is rejected with its reason.
    """
    receipt = Receipt()
    by_system: dict[str, list[CallIn]] = {}
    verdicts: dict[str, Any] = {}
    for read in read_spans(request):
        problem = read.problem
        if problem is None and read.system is None:
            problem = (
                f"{read.where}: no Steward system; set the span or resource attribute "
                f"{SYSTEM_ATTRIBUTE} (e.g. OTEL_RESOURCE_ATTRIBUTES={SYSTEM_ATTRIBUTE}=support)"
            )
        if problem is None and read.system is not None:
            if read.system not in verdicts:
                verdicts[read.system] = _llm_system(read.system, read.system_source, declared)
            if isinstance(verdicts[read.system], str):
                problem = verdicts[read.system]
        checked = _checked(read) if problem is None else problem
        if isinstance(checked, str):
            receipt.rejected += 1
            receipt.reasons.append(checked)
            continue
        by_system.setdefault(str(read.system), []).append(checked)
    for system, calls in by_system.items():
        config = verdicts[system]
        book = prices(config)
        for start in range(0, len(calls), MAX_CALLS):
            stored = record_calls(
                events,
                system,
                calls[start : start + MAX_CALLS],
                prices=book,
                text=config.call_text,
            )
            receipt.ids.setdefault(system, []).extend(event["id"] for event in stored)
    return receipt


def _llm_system(name: str, source: str, declared: Callable[[str], Any]) -> Any:
    """The declaration of an llm system, or the reason its spans are refused."""
    advice = (
        f"set the span or resource attribute {SYSTEM_ATTRIBUTE} to a system of task 'llm' "
        "declared in steward.yaml (then `steward apply`)"
    )
    try:
        config = declared(name)
    except StewardError as error:
        return f"system {name!r} (from the {source}): {error}; {advice}"
    if config.task != "llm":
        return f"system {name!r} (from the {source}) has task {config.task!r}; {advice}"
    return config


def _checked(read: SpanCall) -> CallIn | str:
    """The call, validated as ``record_calls`` will, or why it is refused."""
    try:
        call = CallIn.model_validate(read.call)
        call.check_counts(read.where)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        got = repr(first.get("input"))
        got = got if len(got) <= 80 else got[:77] + "..."
        return f"{read.where}: {where}: {first['msg']} (got {got})"
    except InvalidInputError as error:
        return str(error)
    return call
