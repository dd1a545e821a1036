"""The Open Inference Protocol (KServe v2) endpoints, so KServe and Triton clients work unchanged.

A system is a model; its versions are registry versions. An inference request carries one tensor per
input column (shape ``[n]`` or ``[n, 1]``); the response carries ``score`` (FP64; ``[n, k]`` for a
model that scores k classes) and, when the system has a policy, ``decision`` (BYTES). The request
``id`` becomes the prediction id (with ``-i`` appended per row after the first when the request
holds several rows).

The body is JSON, with or without a ``Content-Type``; with the binary data extension
(``web/oip_binary.py``) it is a JSON header of ``Inference-Header-Content-Length`` bytes followed by
the raw tensors, and outputs asked for with ``"parameters": {"binary_data": true}`` (or the request's
``binary_data_output``) come back the same way. A version in the path
(``/v2/models/churn/versions/3/infer``) must be the champion's: Steward scores with the champion
(and, for a share of entities, the canary), and the response's ``model_version`` names the versions
that scored. Errors on these routes take the protocol's shape, ``{"error": "..."}``, with 400, 401,
403, 404 or 503, rather than problem+json. ``web/grpc/`` serves the same calls over gRPC through
``infer_tensors``, so both log identical events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import zlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from steward import __version__
from steward.delivery.serving import PredictionResult, Service
from steward.errors import InvalidInputError, NotFoundError, StewardError, UnauthenticatedError
from steward.web.deps import ServiceDep, StewardDep
from steward.web.oip_binary import DATATYPES, HEADER, decode_tensor, encode_tensor, split_body
from steward.web.roles import Role, RoleRoute, requires

__all__ = [
    "InferRequest",
    "Inference",
    "InputTensor",
    "OutputTensor",
    "ProtocolRoute",
    "Tensor",
    "error_status",
    "infer",
    "infer_tensors",
    "infer_version",
    "live",
    "model_description",
    "model_metadata",
    "model_ready",
    "readiness",
    "ready",
    "router",
    "server_description",
    "server_metadata",
    "version_metadata",
    "version_ready",
]

logger = logging.getLogger(__name__)

#: The most bytes a compressed (``Content-Encoding: gzip`` or ``deflate``) request may inflate to.
MAX_INFLATED_BYTES = 64 * 1024 * 1024


class Tensor(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    shape: list[int] = Field(min_length=1, max_length=2)
    datatype: str
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = None
    inputs: list[Tensor] = Field(min_length=1)
    outputs: list[dict[str, Any]] | None = None
    parameters: dict[str, Any] | None = None


@dataclass(frozen=True)
class InputTensor:
    """One decoded input column: its elements flat, in row order."""

    name: str
    datatype: str
    shape: list[int]
    data: list[Any]


@dataclass(frozen=True)
class OutputTensor:
    """One output: ``score`` or ``decision``, its elements flat, in row order."""

    name: str
    datatype: str
    shape: list[int]
    data: list[Any]

    def raw(self) -> bytes:
        """The raw little-endian bytes: a missing score is NaN, a missing decision empty."""
        if self.datatype == "BYTES":
            return encode_tensor("BYTES", ["" if value is None else value for value in self.data])
        return encode_tensor(self.datatype, [math.nan if v is None else v for v in self.data])


@dataclass(frozen=True)
class Inference:
    """A decoded inference request, whichever transport brought it; ``outputs`` ``None`` is all."""

    model_name: str
    inputs: list[InputTensor]
    model_version: str = ""
    id: str | None = None
    outputs: list[str] | None = None
    results: list[PredictionResult] = field(default_factory=list)


class ProtocolRoute(RoleRoute):
    """A route whose errors take the protocol's shape, ``{"error": "..."}``, not problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as error:
                return _error_response(request, error)

        return answer


router = APIRouter(route_class=ProtocolRoute, tags=["open inference protocol"])

_INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": InferRequest.model_json_schema()}},
    }
}


@router.get("/v2", dependencies=[requires(Role.VIEWER)])
def server_metadata() -> dict[str, Any]:
    """The server's name and version (Open Inference Protocol server metadata)."""
    return server_description()


@router.get("/v2/health/live", dependencies=[requires(Role.ANONYMOUS)])
def live() -> dict[str, bool]:
    """The process is up."""
    return {"live": True}


@router.get("/v2/health/ready", dependencies=[requires(Role.ANONYMOUS)])
def ready(steward: StewardDep) -> dict[str, bool]:
    """The store answers (503 with the protocol's error otherwise)."""
    steward.systems()
    return {"ready": True}


@router.get("/v2/models/{name}", dependencies=[requires(Role.VIEWER)])
def model_metadata(name: str, service: ServiceDep) -> dict[str, Any]:
    """The system as a model: its versions, input columns (from the contract) and outputs."""
    return model_description(service, name)


@router.get("/v2/models/{name}/versions/{version}", dependencies=[requires(Role.VIEWER)])
def version_metadata(name: str, version: str, service: ServiceDep) -> dict[str, Any]:
    """``model_metadata``, after checking that ``version`` is registered (404 otherwise)."""
    return model_description(service, name, version)


@router.get("/v2/models/{name}/ready", dependencies=[requires(Role.VIEWER)])
def model_ready(name: str, service: ServiceDep) -> JSONResponse:
    """200 when the system has a champion to score with, 400 (the protocol's "no") otherwise."""
    return _readiness_response(service, name, "")


@router.get("/v2/models/{name}/versions/{version}/ready", dependencies=[requires(Role.VIEWER)])
def version_ready(name: str, version: str, service: ServiceDep) -> JSONResponse:
    """200 when ``version`` is the champion, which scores requests; 400 otherwise."""
    return _readiness_response(service, name, version)


@router.post(
    "/v2/models/{name}/infer",
    dependencies=[requires(Role.CLIENT)],
    openapi_extra=_INFER_BODY,
    response_model=None,
)
async def infer(name: str, request: Request, service: ServiceDep) -> Response:
    """Score the request's rows (one tensor per input column) and log each prediction.

    Like ``predict``, concurrent requests share one model call (``delivery/batching.py``).
    """
    return await _infer_http(service, name, "", request)


@router.post(
    "/v2/models/{name}/versions/{version}/infer",
    dependencies=[requires(Role.CLIENT)],
    openapi_extra=_INFER_BODY,
    response_model=None,
)
async def infer_version(name: str, version: str, request: Request, service: ServiceDep) -> Response:
    """``infer``, after checking that ``version`` is the champion that scores it."""
    return await _infer_http(service, name, version, request)


# What both transports share


def server_description() -> dict[str, Any]:
    """Server metadata: Steward's name, version and the protocol extensions it serves."""
    return {"name": "steward", "version": __version__, "extensions": ["binary_tensor_data"]}


def model_description(service: Service, name: str, version: str = "") -> dict[str, Any]:
    """Model metadata: versions, inputs from the contract, outputs; checks ``version`` exists."""
    runtime = service.runtime(name)
    versions = [str(item.version) for item in service.steward.versions(name)]
    if version:
        _registered(name, version, versions)
    inputs = []
    if runtime.contract is not None:
        inputs = [
            {"name": column, "datatype": _datatype(rule.type), "shape": [-1]}
            for column, rule in runtime.contract.columns.items()
        ]
    outputs = [{"name": "score", "datatype": "FP64", "shape": [-1]}]
    if runtime.policy is not None:
        outputs.append({"name": "decision", "datatype": "BYTES", "shape": [-1]})
    return {
        "name": name,
        "versions": versions,
        "platform": "steward",
        "inputs": inputs,
        "outputs": outputs,
    }


def readiness(service: Service, name: str, version: str = "") -> str | None:
    """``None`` when the model (or ``version`` of it) scores requests; else why it does not."""
    runtime = service.runtime(name)
    if runtime.champion is None:
        return f"model {name!r} has no champion; move the champion alias to a registered version"
    if version:
        _registered(name, version, [str(item.version) for item in service.steward.versions(name)])
        if version != str(runtime.champion):
            return (
                f"version {version} of {name!r} is registered but does not score requests; "
                f"the champion, version {runtime.champion}, does"
            )
    return None


async def infer_tensors(service: Service, inference: Inference) -> list[OutputTensor]:
    """Check, score, decide and log ``inference``'s rows; the output tensors it asks for.

    Both transports call this, so a row is logged the same way whichever brought it; the results
    are kept on ``inference.results`` for the response's ``id`` and ``model_version``.
    """
    runtime = service.runtime(inference.model_name)
    if inference.model_version:
        # The registry is read for the version: off the event loop.
        why = await asyncio.to_thread(
            readiness, service, inference.model_name, inference.model_version
        )
        if why is not None:
            raise InvalidInputError(
                f"{why}; ask for version {runtime.champion} or for no version, or promote "
                f"version {inference.model_version} with `steward models alias "
                f"{inference.model_name} champion {inference.model_version}`"
            )
    available = ["score", *(["decision"] if runtime.policy is not None else [])]
    for wanted in inference.outputs or []:
        if wanted not in available:
            raise InvalidInputError(
                f"model {inference.model_name!r} has no output {wanted!r}; it has "
                f"{', '.join(available)}"
            )
    results = await service.predict_async(inference.model_name, _records(inference))
    inference.results.extend(results)
    names = inference.outputs or available
    return [
        _score_tensor(results) if item == "score" else _decision_tensor(results) for item in names
    ]


def error_status(error: Exception) -> int:
    """The HTTP status of an error on a protocol route: 400 for any bad request, 500 for a bug."""
    if isinstance(error, StewardError):
        return 400 if error.status in {409, 422} else error.status
    if isinstance(error, RequestValidationError | ValidationError):
        return 400
    if isinstance(error, HTTPException):
        return 400 if error.status_code == 422 else error.status_code
    return 500


# HTTP


async def _infer_http(service: Service, name: str, version: str, request: Request) -> Response:
    body = await request.body()
    inflated = _inflate(body, request.headers.get("content-encoding"))
    header, tail = split_body(inflated, request.headers.get(HEADER))
    parsed = _parse(header)
    binary_default = bool((parsed.parameters or {}).get("binary_data_output", False))
    wanted = {_output_name(item): item for item in parsed.outputs or []}
    inference = Inference(
        model_name=name,
        model_version=version,
        id=parsed.id,
        inputs=_inputs(parsed.inputs, tail),
        outputs=[str(item) for item in wanted] if wanted else None,
    )
    outputs = await infer_tensors(service, inference)
    results = inference.results
    document: dict[str, Any] = {
        "model_name": name,
        "model_version": ",".join(str(v) for v in sorted({r.model_version for r in results})),
        "id": parsed.id or results[0].id,
        "outputs": [],
    }
    binary = b""
    for output in outputs:
        item: dict[str, Any] = {"name": output.name, "datatype": output.datatype}
        item["shape"] = output.shape
        parameters = (wanted.get(output.name) or {}).get("parameters") or {}
        if parameters.get("binary_data", binary_default):
            raw = output.raw()
            item["parameters"] = {"binary_data_size": len(raw)}
            binary += raw
        else:
            item["data"] = output.data
        document["outputs"].append(item)
    text = json.dumps(document).encode()
    if not binary:
        return Response(text, media_type="application/json")
    headers = {HEADER: str(len(text))}
    return Response(text + binary, media_type="application/octet-stream", headers=headers)


def _output_name(item: dict[str, Any]) -> str:
    name = item.get("name")
    if not isinstance(name, str):
        raise InvalidInputError(
            f"each requested output needs a name (score or decision), got {item!r}"
        )
    return name


def _inflate(body: bytes, encoding: str | None) -> bytes:
    kind = (encoding or "identity").strip().lower()
    if kind == "identity":
        return body
    if kind not in {"gzip", "deflate"}:
        raise InvalidInputError(
            f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or none"
        )
    inflater = zlib.decompressobj(wbits=31 if kind == "gzip" else 15)
    try:
        inflated = inflater.decompress(body, MAX_INFLATED_BYTES)
    except zlib.error as error:
        raise InvalidInputError(f"the body is not valid {kind} data ({error})") from None
    if inflater.unconsumed_tail:
        raise InvalidInputError(
            f"the {kind} body inflates to more than {MAX_INFLATED_BYTES} bytes; send fewer rows"
        )
    return inflated


def _parse(header: bytes) -> InferRequest:
    try:
        document = json.loads(header)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidInputError(
            f"the inference request is not valid JSON ({error}); send a JSON object, followed "
            f"by the raw tensors when the {HEADER} header gives the JSON's length"
        ) from None
    try:
        return InferRequest.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidInputError(
            f"the inference request's {where}: {first['msg']} (got {first.get('input')!r})"
        ) from None


def _inputs(tensors: list[Tensor], tail: bytes) -> list[InputTensor]:
    decoded = []
    offset = 0
    for tensor in tensors:
        size = (tensor.parameters or {}).get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(tail):
                raise InvalidInputError(
                    f"input {tensor.name!r}: binary_data_size {size!r} does not fit the "
                    f"{len(tail) - offset} bytes left after the JSON header"
                )
            data = decode_tensor(tensor.datatype, tail[offset : offset + size], tensor.name)
            offset += size
        elif tensor.data is not None:
            data = _flat(tensor.data)
        else:
            raise InvalidInputError(
                f"input {tensor.name!r} has neither data nor parameters.binary_data_size; "
                "send its elements in data, or its raw bytes after the JSON header"
            )
        decoded.append(InputTensor(tensor.name, tensor.datatype, tensor.shape, data))
    if offset != len(tail):
        raise InvalidInputError(
            f"the body holds {len(tail) - offset} bytes after the last input's binary data; "
            "each input's binary_data_size must count its bytes exactly"
        )
    return decoded


def _flat(data: list[Any]) -> list[Any]:
    return [item for row in data for item in _flat(row)] if _nested(data) else data


def _nested(data: list[Any]) -> bool:
    return any(isinstance(item, list) for item in data)


def _readiness_response(service: Service, name: str, version: str) -> JSONResponse:
    why = readiness(service, name, version)
    if why is None:
        return JSONResponse({"name": name, "ready": True})
    return JSONResponse({"name": name, "ready": False, "error": why}, status_code=400)


def _error_response(request: Request, error: Exception) -> JSONResponse:
    status = error_status(error)
    if status == 500:
        logger.error("unhandled error on %s", request.url.path, exc_info=error)
        message = (
            "Steward hit a bug; the server log has the traceback. Nothing in your request "
            "caused it."
        )
    elif isinstance(error, RequestValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid')}"
    elif isinstance(error, HTTPException):
        message = str(error.detail)
    else:
        message = str(error)
    answer = JSONResponse({"error": message}, status_code=status)
    if isinstance(error, UnauthenticatedError):
        answer.headers["WWW-Authenticate"] = 'Bearer realm="steward"'
    if status == 503:
        answer.headers["Retry-After"] = "1"
    return answer


# Rows in, tensors out


def _records(inference: Inference) -> list[dict[str, Any]]:
    n_rows = None
    for tensor in inference.inputs:
        if tensor.datatype not in DATATYPES:
            raise InvalidInputError(
                f"input {tensor.name!r}: datatype {tensor.datatype!r} is not an "
                f"Open Inference Protocol type ({', '.join(sorted(DATATYPES))})"
            )
        if len(tensor.shape) not in {1, 2} or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise InvalidInputError(
                f"input {tensor.name!r}: shape {tensor.shape} must be [n] or "
                "[n, 1]: one tensor per input column"
            )
        if tensor.shape[0] != len(tensor.data):
            raise InvalidInputError(
                f"input {tensor.name!r}: shape says {tensor.shape[0]} rows but "
                f"data holds {len(tensor.data)}"
            )
        if n_rows is not None and tensor.shape[0] != n_rows:
            raise InvalidInputError(
                f"input {tensor.name!r} has {tensor.shape[0]} rows, the others "
                f"{n_rows}; every input column needs the same number of rows"
            )
        n_rows = tensor.shape[0]
    if not n_rows:
        raise InvalidInputError("the inference request holds no rows")
    records: list[dict[str, Any]] = [{} for _ in range(n_rows)]
    for tensor in inference.inputs:
        for row, value in zip(records, tensor.data, strict=True):
            row[tensor.name] = value
    if inference.id:
        for index, row in enumerate(records):
            row["id"] = inference.id if index == 0 else f"{inference.id}-{index}"
    return records


def _score_tensor(results: list[PredictionResult]) -> OutputTensor:
    scores = [result.score for result in results]
    if any(isinstance(score, list) for score in scores):
        width = max(len(score) for score in scores if isinstance(score, list))
        rows = [score if isinstance(score, list) else [None] * width for score in scores]
        flat = [value for row in rows for value in row]
        return OutputTensor("score", "FP64", [len(results), width], flat)
    return OutputTensor("score", "FP64", [len(results)], scores)


def _decision_tensor(results: list[PredictionResult]) -> OutputTensor:
    return OutputTensor("decision", "BYTES", [len(results)], [r.decision for r in results])


def _registered(name: str, version: str, versions: list[str]) -> None:
    if version not in versions:
        raise NotFoundError(
            f"model {name!r} has no version {version!r}; its versions are "
            f"{', '.join(versions) or 'none yet'} (`steward models list {name}`)"
        )


def _datatype(column_type: str) -> str:
    return {"int": "INT64", "float": "FP64", "bool": "BOOL"}.get(column_type, "BYTES")
