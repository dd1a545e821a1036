"""The Open Inference Protocol over gRPC (``inference.GRPCInferenceService``), beside the HTTP app.

``steward serve --grpc-port 8001`` calls ``serve_grpc``: a ``grpc.aio`` server starts on uvicorn's
event loop once the app's lifespan has started, and stops (letting calls in flight finish) before
the app drains its prediction service and closes the event log. Each call reaches the same objects
the HTTP routes use: ``ModelInfer`` goes through ``steward.web.routes.oip.infer_tensors``, so a row
is checked against the contract, decided by policy and logged exactly as over HTTP.

Callers authenticate as over HTTP, with an API token in the ``authorization`` metadata
(``Bearer stw_...``): ``ModelInfer`` needs the client role, the metadata and readiness calls the
viewer role, ``ServerLive`` and ``ServerReady`` none. Errors are gRPC statuses with the message the
HTTP route would give: ``INVALID_ARGUMENT``, ``NOT_FOUND``, ``UNAUTHENTICATED``,
``PERMISSION_DENIED``, ``UNAVAILABLE``.

Example (Triton's client)::

    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient("localhost:8001")
    tenure = grpcclient.InferInput("tenure", [2], "INT64")
    tenure.set_data_from_numpy(np.array([3, 40]))
    result = client.infer("churn", [tenure], headers={"authorization": "Bearer stw_..."})
    result.as_numpy("score")
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import grpc
from fastapi import FastAPI

from steward.errors import ForbiddenError, InvalidInputError, UnauthenticatedError
from steward.governance.access import Identity, Role
from steward.web.auth import Access, bearer_identity
from steward.web.grpc import open_inference_pb2 as pb
from steward.web.grpc import open_inference_pb2_grpc as pb_grpc
from steward.web.oip_binary import decode_tensor, decode_text
from steward.web.routes.oip import (
    Inference,
    InputTensor,
    OutputTensor,
    error_status,
    infer_tensors,
    model_description,
    readiness,
    server_description,
)

__all__ = ["InferenceServicer", "identify", "serve_grpc"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The largest request or response message, as the HTTP app's default body limit.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: How long calls in flight may take to finish when the server stops.
GRACE_SECONDS = 5.0

_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}
#: Which field of ``InferTensorContents`` carries each datatype's elements.
_CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP16": "fp32_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def serve_grpc(app: FastAPI, host: str, port: int) -> None:
    """Serve ``app``'s workspace over gRPC on ``host:port`` for as long as ``app`` runs."""
    inner = app.router.lifespan_context
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with inner(application) as state:
            server = grpc.aio.server(
                options=[
                    ("grpc.so_reuseport", 0),  # a second server on the port fails, not shares
                    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ]
            )
            pb_grpc.add_GRPCInferenceServiceServicer_to_server(
                InferenceServicer(application), server
            )
            server.add_insecure_port(address)
            await server.start()
            try:
                yield state
            finally:
                await server.stop(GRACE_SECONDS)

    app.router.lifespan_context = lifespan


def identify(access: Access, metadata: dict[str, str]) -> Identity | None:
    """The identity a call's ``authorization`` metadata proves; ``None`` when it sends none."""
    if access.local is not None:
        return access.local
    header = metadata.get("authorization")
    if header is None:
        return None
    return bearer_identity(access, header, "the authorization metadata")


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """The protocol's calls over the objects of the HTTP ``app`` (its ``state``)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def ServerLive(self, request: Any, context: Any) -> Any:  # the protocol names the methods
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> Any:
        async def work() -> Any:
            await asyncio.to_thread(self.app.state.steward.systems)
            return pb.ServerReadyResponse(ready=True)

        return await self._guard(context, Role.ANONYMOUS, "ServerReady", work)

    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        async def work() -> Any:
            return pb.ServerMetadataResponse(**server_description())

        return await self._guard(context, Role.VIEWER, "ServerMetadata", work)

    async def ModelReady(self, request: Any, context: Any) -> Any:
        async def work() -> Any:
            service = self.app.state.service
            why = await asyncio.to_thread(readiness, service, request.name, request.version)
            return pb.ModelReadyResponse(ready=why is None)

        return await self._guard(context, Role.VIEWER, "ModelReady", work)

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        async def work() -> Any:
            service = self.app.state.service
            found = await asyncio.to_thread(
                model_description, service, request.name, request.version
            )
            tensors = pb.ModelMetadataResponse.TensorMetadata
            return pb.ModelMetadataResponse(
                name=found["name"],
                versions=found["versions"],
                platform=found["platform"],
                inputs=[tensors(**item) for item in found["inputs"]],
                outputs=[tensors(**item) for item in found["outputs"]],
            )

        return await self._guard(context, Role.VIEWER, "ModelMetadata", work)

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        async def work() -> Any:
            inference = Inference(
                model_name=request.model_name,
                model_version=request.model_version,
                id=request.id or None,
                inputs=_inputs(request),
                outputs=[output.name for output in request.outputs] or None,
            )
            outputs = await infer_tensors(self.app.state.service, inference)
            return _response(inference, outputs)

        return await self._guard(context, Role.CLIENT, "ModelInfer", work)

    async def _guard(
        self, context: Any, role: Role, call: str, work: Callable[[], Awaitable[T]]
    ) -> T:
        """Check the caller holds ``role``, then ``work``; any error ends the call with a status."""
        try:
            await self._authorize(context, role, call)
            return await work()
        except Exception as error:
            status = error_status(error)
            message = str(error)
            if status == 500:
                logger.error("unhandled error in gRPC %s", call, exc_info=error)
                message = "Steward hit a bug; the server log has the traceback"
            await context.abort(_CODES.get(status, grpc.StatusCode.INTERNAL), message)
            raise  # abort raises; this is never reached

    async def _authorize(self, context: Any, role: Role, call: str) -> None:
        if role is Role.ANONYMOUS:
            return
        metadata = {key.lower(): value for key, value in context.invocation_metadata() or ()}
        identity = await asyncio.to_thread(identify, self.app.state.access, metadata)
        if identity is None:
            raise UnauthenticatedError(
                f"{call} needs the {role.label} role; send the metadata 'authorization: Bearer "
                "<token>' (`steward tokens create`)"
            )
        if identity.role < role:
            raise ForbiddenError(
                f"{identity.name} holds the {identity.role.label} role; {call} needs "
                f"{role.label} or above"
            )


def _inputs(request: Any) -> list[InputTensor]:
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise InvalidInputError(
            f"the request has {len(request.inputs)} inputs but {len(raw)} raw_input_contents; "
            "send raw contents for every input, in input order, or for none"
        )
    decoded = []
    for index, tensor in enumerate(request.inputs):
        if raw:
            data = decode_tensor(tensor.datatype, raw[index], tensor.name)
        else:
            field = _CONTENTS.get(tensor.datatype)
            if field is None:
                data = decode_tensor(tensor.datatype, b"", tensor.name)  # names the valid types
            else:
                data = list(getattr(tensor.contents, field))
            if tensor.datatype == "BYTES":
                data = [decode_text(item, tensor.name) for item in data]
        decoded.append(InputTensor(tensor.name, tensor.datatype, list(tensor.shape), data))
    return decoded


def _response(inference: Inference, outputs: list[OutputTensor]) -> Any:
    results = inference.results
    versions = sorted({result.model_version for result in results})
    answer = pb.ModelInferResponse(
        model_name=inference.model_name,
        model_version=",".join(str(version) for version in versions),
        id=inference.id or results[0].id,
    )
    for output in outputs:
        answer.outputs.add(name=output.name, datatype=output.datatype, shape=output.shape)
        answer.raw_output_contents.append(output.raw())
    return answer
