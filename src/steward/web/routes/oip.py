"""The Open Inference Protocol (KServe v2) endpoints, so KServe and Triton clients work unchanged.

A system is a model; its versions are registry versions. An inference request carries one tensor per
input column (shape ``[n]`` or ``[n, 1]``); the response carries ``score`` (FP64) and, when the system
has a policy, ``decision`` (BYTES). The request ``id`` becomes the prediction id (with ``-i`` appended
per row after the first when the request holds several rows).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from steward import __version__
from steward.errors import InvalidInputError
from steward.web.deps import ServiceDep, StewardDep
from steward.web.roles import Role, RoleRoute, requires

__all__ = [
    "InferRequest",
    "Tensor",
    "infer",
    "live",
    "model_metadata",
    "model_ready",
    "ready",
    "router",
    "server_metadata",
]

_DATATYPES = {
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
}


class Tensor(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    shape: list[int] = Field(min_length=1, max_length=2)
    datatype: str
    data: list[Any]
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = None
    inputs: list[Tensor] = Field(min_length=1)
    outputs: list[dict[str, Any]] | None = None
    parameters: dict[str, Any] | None = None


router = APIRouter(route_class=RoleRoute, tags=["open inference protocol"])


@router.get("/v2", dependencies=[requires(Role.VIEWER)])
def server_metadata() -> dict[str, Any]:
    """The server's name and version (Open Inference Protocol server metadata)."""
    return {"name": "steward", "version": __version__, "extensions": []}


@router.get("/v2/health/live", dependencies=[requires(Role.ANONYMOUS)])
def live() -> dict[str, bool]:
    """The process is up."""
    return {"live": True}


@router.get("/v2/health/ready", dependencies=[requires(Role.ANONYMOUS)])
def ready(steward: StewardDep) -> dict[str, bool]:
    """The store answers."""
    steward.systems()
    return {"ready": True}


@router.get("/v2/models/{name}", dependencies=[requires(Role.VIEWER)])
def model_metadata(name: str, steward: StewardDep, service: ServiceDep) -> dict[str, Any]:
    """The system as a model: its versions, input columns (from the contract) and outputs."""
    runtime = service.runtime(name)
    versions = [str(version.version) for version in steward.versions(name)]
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


@router.get("/v2/models/{name}/ready", dependencies=[requires(Role.VIEWER)])
def model_ready(name: str, service: ServiceDep) -> dict[str, Any]:
    """Whether the system has a champion to score with."""
    runtime = service.runtime(name)
    return {"name": name, "ready": runtime.champion is not None}


@router.post("/v2/models/{name}/infer", dependencies=[requires(Role.CLIENT)])
async def infer(name: str, body: InferRequest, service: ServiceDep) -> dict[str, Any]:
    """Score the request's rows (one tensor per input column) and log each prediction.

    Like ``predict``, concurrent requests share one model call (``delivery/batching.py``).
    """
    records = _records(body)
    results = await service.predict_async(name, records)
    outputs = [
        {
            "name": "score",
            "datatype": "FP64",
            "shape": [len(results)],
            "data": [result.score for result in results],
        }
    ]
    if any(result.decision is not None for result in results):
        outputs.append(
            {
                "name": "decision",
                "datatype": "BYTES",
                "shape": [len(results)],
                "data": [result.decision for result in results],
            }
        )
    versions = sorted({result.model_version for result in results})
    return {
        "model_name": name,
        "model_version": ",".join(map(str, versions)),
        "id": body.id or results[0].id,
        "outputs": outputs,
    }


def _records(body: InferRequest) -> list[dict[str, Any]]:
    n_rows = None
    for tensor in body.inputs:
        if tensor.datatype not in _DATATYPES:
            raise InvalidInputError(
                f"input {tensor.name!r}: datatype {tensor.datatype!r} is not an "
                f"Open Inference Protocol type ({', '.join(sorted(_DATATYPES))})"
            )
        if len(tensor.shape) == 2 and tensor.shape[1] != 1:
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
    for tensor in body.inputs:
        for row, value in zip(records, tensor.data, strict=True):
            row[tensor.name] = value
    if body.id:
        for index, row in enumerate(records):
            row["id"] = body.id if index == 0 else f"{body.id}-{index}"
    return records


def _datatype(column_type: str) -> str:
    return {"int": "INT64", "float": "FP64", "bool": "BOOL"}.get(column_type, "BYTES")
