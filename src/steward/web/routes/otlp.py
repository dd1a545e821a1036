"""HTTP for OpenTelemetry traces (``steward.llm.otlp``): an OTLP/HTTP receiver for GenAI spans.

Its ``router`` holds ``POST /v1/traces``, the ``client`` role's: the path OTLP/HTTP exporters post
traces to, so an application already instrumented with OpenTelemetry logs its LLM calls with no
code change::

    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=https://steward.example.com/v1/traces
    OTEL_EXPORTER_OTLP_TRACES_HEADERS="Authorization=Bearer stw_..."
    OTEL_RESOURCE_ATTRIBUTES=steward.system=support

The body is an ``ExportTraceServiceRequest`` in protobuf (``application/x-protobuf``) or OTLP/JSON
(``application/json``), optionally gzip- or deflate-compressed. The answer is an
``ExportTraceServiceResponse`` in the same encoding, with ``partial_success`` (``rejected_spans``
and ``error_message``) when some GenAI spans could not be logged: a span for an unknown system or
one not of task ``llm``, or a span that cannot be read as a call. A body that is not such a
message is a 400, an unknown content type or encoding a 415, both ``application/problem+json``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from steward.llm import otlp
from steward.llm.cost import price_book
from steward.web.deps import EventsDep, StewardDep
from steward.web.problems import problem
from steward.web.roles import Role, RoleRoute, requires

__all__ = ["export_traces", "read_body", "router"]

router = APIRouter(route_class=RoleRoute, tags=["llm"])

#: The request body as OpenAPI describes it (FastAPI cannot infer it from a raw body).
REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "An OTLP ExportTraceServiceRequest, per the OTLP/HTTP specification.",
        "content": {
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"resourceSpans": {"type": "array", "items": {"type": "object"}}},
                }
            },
        },
    }
}


async def read_body(request: Request) -> bytes:
    """The raw request body (read on the event loop, so the route itself can run in a thread)."""
    return await request.body()


@router.post(
    "/v1/traces",
    dependencies=[requires(Role.CLIENT)],
    openapi_extra=REQUEST_BODY,
    response_class=Response,
    responses={
        200: {"description": "An OTLP ExportTraceServiceResponse, in the request's encoding."}
    },
)
def export_traces(
    request: Request,
    body: Annotated[bytes, Depends(read_body)],
    steward: StewardDep,
    events: EventsDep,
) -> Response:
    """Log the GenAI spans of an OTLP trace export as LLM calls; answer OTLP's response."""
    content_type = request.headers.get("content-type", "")
    encoding = otlp.encoding_of(content_type)
    if encoding is None:
        return problem(
            415,
            "Unsupported media type",
            f"content type {content_type or '(none)'!r} is not an OTLP/HTTP encoding; send "
            "Content-Type: application/x-protobuf (the exporters' default) or application/json",
            request.url.path,
        )
    compression = request.headers.get("content-encoding", "identity").strip().lower()
    if compression not in otlp.COMPRESSIONS:
        return problem(
            415,
            "Unsupported media type",
            f"Content-Encoding {compression!r} is not supported; send gzip, deflate or none",
            request.url.path,
        )
    message = otlp.decode_request(body, encoding, compression=compression)
    receipt = otlp.record_spans(
        events, message, declared=lambda name: steward.system(name).declared, prices=price_book
    )
    media_type = content_type.split(";")[0].strip().lower()
    return Response(otlp.encode_response(receipt.to_response(), encoding), media_type=media_type)
