"""OTLP/HTTP traces in, LLM calls out (``steward.llm.otlp`` and ``POST /v1/traces``).

Spans are made by the OpenTelemetry SDK and encoded by its own OTLP encoder (``encode_spans``), so
the receiver reads what a real exporter sends. OTLP/JSON is built from the same protobuf message
as the OTLP specification says: protobuf's JSON mapping (camelCase keys, 64-bit integers as
strings, enums as integers), with trace and span ids rewritten from base64 to hex. The end-to-end
tests export through the SDK's ``OTLPSpanExporter`` into a real ``steward serve``.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from steward import Steward
from steward.llm import otlp
from steward.llm.cost import price_book

from .conftest import Server

PRICES = {"input": 2.0, "cached_input": 0.5, "output": 8.0}  # dollars per million tokens
CACHE_READ = "gen_ai.usage.cache_read.input_tokens"
START = 1_790_000_000_123_456_789  # 2026-09-21T14:13:20.123456789Z, in ns


def config() -> str:
    return yaml.safe_dump(
        {
            "version": 1,
            "systems": [
                {
                    "name": "support",
                    "task": "llm",
                    "owner": "support@example.com",
                    "prices": {"acme-llm": [{"valid_from": date(2020, 1, 1), **PRICES}]},
                },
                {"name": "churn", "task": "binary", "owner": "ana@example.com"},
            ],
        }
    )


def chat(**extra: Any) -> dict[str, Any]:
    """The attributes of a chat span as an instrumented OpenAI client records them."""
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "acme-llm",
        "gen_ai.response.model": "acme-llm",
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.cache_read.input_tokens": 200,
        "gen_ai.usage.output_tokens": 300,
        "gen_ai.usage.reasoning.output_tokens": 100,
        "gen_ai.response.finish_reasons": ["stop"],
        **extra,
    }


def make_spans(
    specs: Sequence[Mapping[str, Any]], resource: Mapping[str, str] | None = None
) -> list[ReadableSpan]:
    """Finished SDK spans: each spec has ``attributes`` and optionally ``name``, ``start``,
    ``end`` (ns), ``status`` and ``events`` [(name, attributes)]."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create(dict(resource or {"service.name": "support"}))
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.otlp")
    for spec in specs:
        span = tracer.start_span(
            spec.get("name", "chat acme-llm"),
            start_time=spec.get("start"),
            attributes=spec.get("attributes", {}),
        )
        for name, attributes in spec.get("events", ()):
            span.add_event(name, attributes)
        if "status" in spec:
            span.set_status(spec["status"])
        span.end(end_time=spec.get("end"))
    provider.shutdown()
    return list(memory.get_finished_spans())


def only_call(message: ExportTraceServiceRequest) -> otlp.SpanCall:
    read = otlp.read_spans(message)
    assert len(read) == 1, read
    return read[0]


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    assert span.context is not None
    return format(span.context.trace_id, "032x"), format(span.context.span_id, "016x")


def otlp_json(message: ExportTraceServiceRequest) -> dict[str, Any]:
    """``message`` in OTLP/JSON: protobuf's JSON mapping with integer enums, ids in hex."""
    document: dict[str, Any] = json_format.MessageToDict(message, use_integers_for_enums=True)

    def rewrite(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                rewrite(item)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key in ("traceId", "spanId", "parentSpanId"):
                    node[key] = base64.b64decode(value).hex().upper()  # hex is case-insensitive
                else:
                    rewrite(value)

    rewrite(document)
    return document


def expected_cost(input_tokens: int, cached: int, output_tokens: int) -> float:
    dollars = (
        (input_tokens - cached) * PRICES["input"]
        + cached * PRICES["cached_input"]
        + output_tokens * PRICES["output"]
    )
    return dollars / 1_000_000


# -- spans to calls


def test_a_chat_span_becomes_a_call_with_its_tokens_times_ids_and_prompt() -> None:
    end = START + 640_000_000
    spans = make_spans(
        [
            {
                "start": START,
                "end": end,
                "attributes": chat(
                    **{
                        "gen_ai.response.model": "acme-llm-2026-09",
                        "gen_ai.usage.cache_creation.input_tokens": 50,
                        "gen_ai.response.time_to_first_chunk": 0.25,
                        "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text",'
                        '"content":"Where is my parcel?"}]}]',
                        "gen_ai.output.messages": '[{"role":"assistant","parts":[]}]',
                        "steward.prompt.name": "answer",
                        "steward.prompt.version": 3,
                    }
                ),
            }
        ]
    )
    read = only_call(encode_spans(spans))
    trace_id, span_id = hex_ids(spans[0])
    assert (read.system, read.system_source) == ("support", "resource attribute service.name")
    assert read.problem is None and read.call is not None
    assert read.call == {
        "trace_id": trace_id,
        "span_id": span_id,
        "provider": "openai",
        "operation": "chat",
        "request_model": "acme-llm",
        "response_model": "acme-llm-2026-09",
        "input_tokens": 1200,
        "cache_read_tokens": 200,
        "cache_creation_tokens": 50,
        "output_tokens": 300,
        "reasoning_tokens": 100,
        "finish_reasons": ["stop"],
        "error": None,
        "prompt": "answer",
        "prompt_version": 3,
        "event_time": datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=START // 1000),
        "latency_ms": 640.0,
        "ttft_ms": 250.0,
        "input_text": spans[0].attributes["gen_ai.input.messages"],  # type: ignore[index]
        "output_text": spans[0].attributes["gen_ai.output.messages"],  # type: ignore[index]
    }
    assert read.call["event_time"].isoformat() == "2026-09-21T14:13:20.123456+00:00"


def test_older_attribute_names_and_span_events_are_read() -> None:
    spans = make_spans(
        [
            {
                "attributes": {
                    "gen_ai.system": "openai",
                    "gen_ai.request.model": "acme-llm",
                    "gen_ai.usage.prompt_tokens": 40,
                    "gen_ai.usage.completion_tokens": 12,
                    "gen_ai.prompt.name": "triage",
                },
                "events": [
                    ("gen_ai.content.prompt", {"gen_ai.prompt": "Where is my parcel?"}),
                    ("gen_ai.content.completion", {"gen_ai.completion": "On its way."}),
                ],
            }
        ]
    )
    call = only_call(encode_spans(spans)).call
    assert call is not None
    assert (call["provider"], call["input_tokens"], call["output_tokens"]) == ("openai", 40, 12)
    assert "operation" not in call  # the call's default ("chat") applies
    assert (call["input_text"], call["output_text"]) == ("Where is my parcel?", "On its way.")
    assert call["prompt"] == "triage" and call["prompt_version"] is None


def test_messages_on_the_details_event_are_read() -> None:
    messages = '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]'
    spans = make_spans(
        [
            {
                "attributes": chat(),
                "events": [
                    (
                        "gen_ai.client.inference.operation.details",
                        {"gen_ai.input.messages": messages},
                    )
                ],
            }
        ]
    )
    call = only_call(encode_spans(spans)).call
    assert call is not None and call["input_text"] == messages and call["output_text"] is None


def in_list(*items: KeyValueList) -> AnyValue:
    return AnyValue(array_value=ArrayValue(values=[AnyValue(kvlist_value=item) for item in items]))


def test_structured_messages_are_kept_as_json() -> None:
    message = encode_spans(make_spans([{"attributes": chat()}]))
    span = message.resource_spans[0].scope_spans[0].spans[0]
    part = KeyValueList(
        values=[
            KeyValue(key="type", value=AnyValue(string_value="text")),
            KeyValue(key="content", value=AnyValue(string_value="Où est mon colis ?")),
        ]
    )
    user = KeyValueList(
        values=[
            KeyValue(key="role", value=AnyValue(string_value="user")),
            KeyValue(key="parts", value=in_list(part)),
        ]
    )
    span.attributes.append(
        KeyValue(
            key="gen_ai.input.messages",
            value=in_list(user),
        )
    )
    call = only_call(message).call
    assert call is not None
    assert json.loads(call["input_text"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Où est mon colis ?"}]}
    ]


def test_a_failed_call_carries_its_error_type_and_status_message() -> None:
    spans = make_spans(
        [
            {
                "attributes": chat(**{"error.type": "timeout"}),
                "status": Status(StatusCode.ERROR, "no answer in 30 s"),
            },
            {"attributes": chat(), "status": Status(StatusCode.ERROR)},
            {"attributes": chat(**{"error.type": "429"})},
            {"attributes": chat(), "status": Status(StatusCode.OK)},
        ]
    )
    errors = [read.call["error"] for read in otlp.read_spans(encode_spans(spans)) if read.call]
    assert errors == ["timeout: no answer in 30 s", "error", "429", None]


def test_only_genai_model_calls_are_read() -> None:
    spans = make_spans(
        [
            {"name": "GET /orders", "attributes": {"http.request.method": "GET"}},
            {
                "name": "invoke_agent helper",
                "attributes": chat(**{"gen_ai.operation.name": "invoke_agent"}),
            },
            {
                "name": "execute_tool lookup",
                "attributes": {"gen_ai.operation.name": "execute_tool"},
            },
            {"name": "embeddings", "attributes": chat(**{"gen_ai.operation.name": "embeddings"})},
        ]
    )
    read = otlp.read_spans(encode_spans(spans))
    assert [item.call["operation"] for item in read if item.call] == ["embeddings"]
    assert len(read) == 1


@pytest.mark.parametrize(
    ("attributes", "named"),
    [
        ({"gen_ai.request.model": None}, "gen_ai.request.model"),
        ({"gen_ai.usage.input_tokens": "many"}, "gen_ai.usage.input_tokens"),
        ({"gen_ai.usage.output_tokens": -3}, "gen_ai.usage.output_tokens"),
        ({"steward.prompt.version": "v3"}, "steward.prompt.version"),
    ],
)
def test_a_genai_span_that_cannot_be_a_call_says_why(
    attributes: dict[str, Any], named: str
) -> None:
    merged = {key: value for key, value in chat(**attributes).items() if value is not None}
    if "gen_ai.request.model" in attributes:
        merged.pop("gen_ai.response.model")
    spans = make_spans([{"attributes": merged}])
    read = only_call(encode_spans(spans))
    assert read.call is None and read.problem is not None
    assert named in read.problem and hex_ids(spans[0])[1] in read.problem


def test_the_system_is_the_span_attribute_then_the_resource_then_the_service() -> None:
    resource = {"service.name": "checkout", "steward.system": "support"}
    spans = make_spans(
        [{"attributes": chat(**{"steward.system": "triage"})}, {"attributes": chat()}], resource
    )
    spans += make_spans([{"attributes": chat()}], {"service.name": "checkout"})
    read = otlp.read_spans(encode_spans(spans))
    assert [(item.system, item.system_source) for item in read] == [
        ("triage", "span attribute steward.system"),
        ("support", "resource attribute steward.system"),
        ("checkout", "resource attribute service.name"),
    ]


# -- decoding


def test_protobuf_gzip_deflate_and_json_bodies_decode_to_the_same_message() -> None:
    message = encode_spans(make_spans([{"attributes": chat(), "start": START, "end": START + 5}]))
    binary = message.SerializeToString()
    document = json.dumps(otlp_json(message)).encode()
    decoded = [
        otlp.decode_request(binary, "protobuf"),
        otlp.decode_request(gzip.compress(binary), "protobuf", compression="gzip"),
        otlp.decode_request(gzip.compress(document), "json", compression="GZIP"),
        otlp.decode_request(zlib.compress(binary), "protobuf", compression="deflate"),
        otlp.decode_request(document, "json"),
    ]
    assert all(item == message for item in decoded)


def test_json_takes_numbers_for_int64_and_ignores_unknown_fields() -> None:
    message = encode_spans(make_spans([{"attributes": chat(), "start": START, "end": START + 7}]))
    document = otlp_json(message)
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["startTimeUnixNano"] = int(span["startTimeUnixNano"])
    span["endTimeUnixNano"] = int(span["endTimeUnixNano"])
    span["someFutureField"] = {"nested": [1, 2]}
    document["someFutureTopLevel"] = True
    decoded = otlp.decode_request(json.dumps(document).encode(), "json")
    assert decoded == message


@pytest.mark.parametrize(
    ("body", "encoding", "compression", "says"),
    [
        (b"not a protobuf", "protobuf", None, "not a protobuf ExportTraceServiceRequest"),
        (b"{not json", "json", None, "not valid JSON"),
        (b"[1, 2]", "json", None, "JSON list, not an object"),
        (b"[" * 100_000, "json", None, "not valid JSON"),
        (b'{"resourceSpans": 3}', "json", None, "resourceSpans"),
        (
            b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"W47/95gDgQPSabYzgT/GDA=="}]}]}]}',
            "json",
            None,
            "resourceSpans[0].scopeSpans[0].spans[0].traceId",
        ),
        (b"this is not gzip", "protobuf", "gzip", "not valid gzip"),
        (gzip.compress(b"{}", mtime=0)[:-6], "json", "gzip", "ends before its end marker"),
    ],
)
def test_a_malformed_body_is_refused_naming_what_is_wrong(
    body: bytes, encoding: otlp.Encoding, compression: str | None, says: str
) -> None:
    with pytest.raises(otlp.MalformedTraceError) as refused:
        otlp.decode_request(body, encoding, compression=compression)
    assert says in str(refused.value) and refused.value.status == 400


def test_a_body_too_large_once_decompressed_is_refused() -> None:
    bomb = gzip.compress(b"{" + b" " * 100_000 + b"}")
    assert len(bomb) < 1_000
    with pytest.raises(otlp.TraceTooLargeError) as refused:
        otlp.decode_request(bomb, "json", compression="gzip", max_bytes=10_000)
    assert refused.value.status == 413 and "10000 bytes" in str(refused.value)


# -- recording, in process


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Steward]:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "steward.yaml").write_text(config())
    steward = Steward.open(root, user="tester")
    steward.init()
    steward.apply()
    yield steward
    steward.close()


def test_calls_are_logged_to_their_llm_system_and_others_rejected_with_reasons(
    workspace: Steward,
) -> None:
    good = make_spans([{"attributes": chat(), "start": START, "end": START + 10**9}])
    nope = make_spans([{"attributes": chat()}, {"attributes": chat()}], {"service.name": "nope"})
    churn = make_spans([{"attributes": chat(**{"steward.system": "churn"})}])
    broken = make_spans([{"attributes": chat(**{"gen_ai.usage.cache_read.input_tokens": 5000})}])
    plain = make_spans([{"name": "GET /", "attributes": {"http.route": "/"}}])
    request = encode_spans(good + nope + churn + broken + plain)

    receipt = otlp.record_spans(
        workspace.events,
        request,
        declared=lambda name: workspace.system(name).declared,
        prices=price_book,
    )

    trace_id, span_id = hex_ids(good[0])
    assert receipt.ids == {"support": [f"{trace_id}-{span_id}"]} and receipt.accepted == 1
    assert receipt.rejected == 4
    message = receipt.error_message
    assert message.startswith("4 GenAI span(s) rejected.")
    assert "2 span(s): system 'nope' (from the resource attribute service.name)" in message
    assert "system 'churn' (from the span attribute steward.system) has task 'binary'" in message
    assert "exceed input_tokens" in message  # cache reads (5000) over the input (1200)
    stored = workspace.events.scan("llm_call", "support").to_pylist()
    assert [row["id"] for row in stored] == [f"{trace_id}-{span_id}"]
    assert stored[0]["cost"] == pytest.approx(expected_cost(1200, 200, 300), rel=1e-12)
    assert stored[0]["priced"] and stored[0]["latency_ms"] == 1000.0
    assert workspace.events.scan("llm_call", "churn").num_rows == 0
    response = receipt.to_response()
    assert response.partial_success.rejected_spans == 4
    assert response.partial_success.error_message == message


def test_a_request_with_nothing_rejected_answers_without_partial_success(
    workspace: Steward,
) -> None:
    request = encode_spans(make_spans([{"attributes": chat()}, {"attributes": {"a": 1}}]))
    receipt = otlp.record_spans(
        workspace.events,
        request,
        declared=lambda name: workspace.system(name).declared,
        prices=price_book,
    )
    assert receipt.accepted == 1 and receipt.rejected == 0
    assert not receipt.to_response().HasField("partial_success")
    assert otlp.encode_response(receipt.to_response(), "json") == b"{}"


# -- end to end, over a real server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("otlp") / "ws"
    root.mkdir()
    (root / "steward.yaml").write_text(config())
    database_url = f"sqlite:///{root / 'store.db'}"
    steward = Steward.open(root, database_url=database_url, user="tester")
    steward.init()
    steward.apply()
    steward.close()
    server = Server(root, database_url)
    server.start()
    yield server
    server.close()


def listed(server: Server, system: str) -> dict[str, dict[str, Any]]:
    answer = httpx.get(f"{server.url}/v1/systems/{system}/llm-calls", params={"limit": 10_000})
    assert answer.status_code == 200, answer.text
    return {call["id"]: call for call in answer.json()["calls"]}


def test_the_sdk_exporter_logs_priced_calls_and_json_resends_are_the_same_calls(
    served: Server,
) -> None:
    prompt = {"steward.prompt.name": "answer", "steward.prompt.version": 2}
    spans = make_spans(
        [
            {"attributes": chat(**prompt)},
            {"name": "GET /orders", "attributes": {"http.request.method": "GET"}},
            {"attributes": chat(**{"gen_ai.usage.input_tokens": 50, CACHE_READ: 0})},
        ]
    )
    exporter = OTLPSpanExporter(endpoint=f"{served.url}/v1/traces", compression=Compression.Gzip)
    assert exporter.export(spans[:2]) is SpanExportResult.SUCCESS
    exporter.shutdown()

    first_id, second_id = ("-".join(hex_ids(span)) for span in (spans[0], spans[2]))
    calls = listed(served, "support")
    assert first_id in calls and second_id not in calls
    first = calls[first_id]
    tokens = ("input_tokens", "cache_read_tokens", "output_tokens", "reasoning_tokens")
    assert [first[name] for name in tokens] == [1200, 200, 300, 100]
    assert (first["prompt"], first["prompt_version"]) == ("answer", 2)
    assert first["cost"] == pytest.approx(expected_cost(1200, 200, 300), rel=1e-12)
    assert first["priced"] and "steward.yaml" in first["price_source"]
    start = spans[0].start_time
    assert start is not None
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert datetime.fromisoformat(first["event_time"]) == epoch + timedelta(
        microseconds=start // 1000
    )

    # All three spans as OTLP/JSON, posted twice: the exported one stays one call, the other
    # GenAI span becomes one more, and the plain span none.
    document = otlp_json(encode_spans(spans))
    for _ in range(2):
        answer = httpx.post(f"{served.url}/v1/traces", json=document)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/json" and answer.json() == {}
    again = listed(served, "support")
    assert len(again) == len(calls) + 1 and again[first_id] == first
    second = again[second_id]
    assert [second[name] for name in tokens] == [50, 0, 300, 100]
    assert second["cost"] == pytest.approx(expected_cost(50, 0, 300), rel=1e-12)


def test_spans_for_an_unknown_system_are_reported_and_not_stored(served: Server) -> None:
    good = make_spans([{"attributes": chat()}])
    unknown = make_spans([{"attributes": chat()}], {"service.name": "nope"})
    churn = make_spans([{"attributes": chat(**{"steward.system": "churn"})}])
    body = encode_spans(good + unknown + churn).SerializeToString()
    answer = httpx.post(
        f"{served.url}/v1/traces",
        content=body,
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/x-protobuf"
    partial = ExportTraceServiceResponse.FromString(answer.content).partial_success
    assert partial.rejected_spans == 2
    assert "system 'nope'" in partial.error_message and "task 'binary'" in partial.error_message
    assert "-".join(hex_ids(good[0])) in listed(served, "support")
    assert listed(served, "churn") == {}
    assert httpx.get(f"{served.url}/v1/systems/nope/llm-calls").status_code == 404

    as_json = httpx.post(f"{served.url}/v1/traces", json=otlp_json(encode_spans(unknown)))
    assert as_json.status_code == 200
    assert int(as_json.json()["partialSuccess"]["rejectedSpans"]) == 1


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        (b"not a protobuf", {"Content-Type": "application/x-protobuf"}, 400, "protobuf"),
        (
            b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"zz"}]}]}]}',
            {"Content-Type": "application/json"},
            400,
            "spanId",
        ),
        (
            b"\x00\x01",
            {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
            400,
            "gzip",
        ),
        (b"<spans/>", {"Content-Type": "application/xml"}, 415, "application/xml"),
        (b"{}", {"Content-Type": "application/json", "Content-Encoding": "br"}, 415, "'br'"),
    ],
)
def test_a_bad_body_gets_a_problem_naming_what_is_wrong(
    served: Server, body: bytes, headers: dict[str, str], status: int, says: str
) -> None:
    answer = httpx.post(f"{served.url}/v1/traces", content=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["status"] == status and says in answer.json()["detail"]
