"""MLflow model directories, read without MLflow: the ``MLmodel`` file, its model file and signature.

An MLflow model is a directory holding an ``MLmodel`` YAML file beside the saved model. Steward
serves the ``sklearn`` flavor (which ``python_function`` wraps with ``loader_module:
mlflow.sklearn``): a model saved with skops (MLflow's default since 3.x) registers as Steward's
``sklearn`` flavor, a pickle or cloudpickle as ``sklearn-pickle``, which loads only with
``--trust``. The signature's inputs become a contract draft (``signature_contract``); the run id and
model id are kept as lineage.

Example::

    model = read_mlflow_model("mlruns/1/models/m-123/artifacts")
    model.artifact, model.flavor, model.run_id    # model.skops, 'sklearn', 'f63d...'
    signature_contract(model.inputs).to_dict()    # {'columns': {'tenure': {'type': 'int'}, ...}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from steward.data.contracts import ColumnRule, Contract
from steward.errors import InvalidInputError

__all__ = ["MLMODEL", "MlflowModel", "is_mlflow_model", "read_mlflow_model", "signature_contract"]

MLMODEL: Final = "MLmodel"
# MLflow's column types (mlflow.types.DataType) as a contract's.
_TYPES: Final = {
    "double": "float",
    "float": "float",
    "long": "int",
    "integer": "int",
    "boolean": "bool",
    "string": "string",
    "datetime": "datetime",
}
_FORMATS: Final = {"skops": "sklearn", "pickle": "sklearn-pickle", "cloudpickle": "sklearn-pickle"}


@dataclass(frozen=True)
class MlflowModel:
    """What Steward reads from an MLflow model directory."""

    directory: Path
    artifact: Path
    flavor: str
    run_id: str | None
    model_id: str | None
    created: str | None
    mlflow_version: str | None
    sklearn_version: str | None
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)

    def lineage(self) -> dict[str, Any]:
        """The MLflow facts kept with the registered version."""
        return {
            "run_id": self.run_id,
            "model_id": self.model_id,
            "created": self.created,
            "mlflow_version": self.mlflow_version,
            "sklearn_version": self.sklearn_version,
            "signature_inputs": self.inputs,
        }


def is_mlflow_model(path: str | Path) -> bool:
    """Whether ``path`` is a directory holding an ``MLmodel`` file."""
    candidate = Path(path)
    return candidate.is_dir() and (candidate / MLMODEL).is_file()


def read_mlflow_model(directory: str | Path) -> MlflowModel:
    """Read ``directory``'s ``MLmodel``: the model file to register, its flavor and signature."""
    root = Path(directory)
    if not is_mlflow_model(root):
        raise InvalidInputError(
            f"{str(directory)!r} is not an MLflow model directory (no {MLMODEL} file in it); pass "
            "the directory mlflow.sklearn.save_model wrote, or the artifacts of a logged model"
        )
    try:
        spec = yaml.safe_load((root / MLMODEL).read_text())
    except yaml.YAMLError as error:
        raise InvalidInputError(f"{root / MLMODEL} is not valid YAML: {error}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("flavors"), dict):
        raise InvalidInputError(f"{root / MLMODEL} has no flavors: section; is it an MLflow model?")
    sklearn = _sklearn_flavor(root, spec["flavors"])
    serialization = str(sklearn.get("serialization_format") or "cloudpickle")
    if serialization not in _FORMATS:
        raise InvalidInputError(
            f"{root / MLMODEL}: sklearn serialization_format {serialization!r} is not one Steward "
            f"reads; save the model with serialization_format='skops' (or {', '.join(_FORMATS)})"
        )
    artifact = root / str(sklearn.get("pickled_model") or "model.pkl")
    if not artifact.is_file():
        raise InvalidInputError(f"{root / MLMODEL} names {artifact.name!r}, which is not in {root}")
    signature = spec.get("signature") or {}
    return MlflowModel(
        directory=root,
        artifact=artifact,
        flavor=_FORMATS[serialization],
        run_id=_text(spec.get("run_id")),
        model_id=_text(spec.get("model_id") or spec.get("model_uuid")),
        created=_text(spec.get("utc_time_created")),
        mlflow_version=_text(spec.get("mlflow_version")),
        sklearn_version=_text(sklearn.get("sklearn_version")),
        inputs=_columns(signature.get("inputs"), root),
        outputs=_columns(signature.get("outputs"), root),
    )


def signature_contract(inputs: list[dict[str, Any]], name: str | None = None) -> Contract:
    """A contract draft from an MLflow signature's column inputs, for a person to review.

    Types map as MLflow defines them (double and float to float, long and integer to int, boolean
    to bool); ``required: false`` makes a column optional. A tensor signature has no columns.

    >>> signature_contract([{"name": "tenure", "type": "long", "required": True}]).to_dict()
    {'version': 1, 'on_violation': 'reject', 'columns': {'tenure': {'type': 'int'}}}
    """
    columns = {}
    for column in inputs:
        name_ = column.get("name")
        kind = _TYPES.get(str(column.get("type")))
        if not name_ or kind is None:
            raise InvalidInputError(
                f"signature input {column} cannot become a contract column (named columns of "
                f"types {', '.join(_TYPES)} can); write the contract by hand or with "
                "`steward contract infer DATA`"
            )
        columns[str(name_)] = ColumnRule(type=kind, required=bool(column.get("required", True)))  # type: ignore[arg-type]
    if not columns:
        raise InvalidInputError(
            "the MLflow model has no column signature; log it with an input_example or a "
            "signature, or draft the contract from data with `steward contract infer DATA`"
        )
    return Contract(name=name, columns=columns)


def _sklearn_flavor(root: Path, flavors: dict[str, Any]) -> dict[str, Any]:
    if isinstance(flavors.get("sklearn"), dict):
        return dict(flavors["sklearn"])
    loader = (flavors.get("python_function") or {}).get("loader_module")
    raise InvalidInputError(
        f"{root / MLMODEL} has the flavors {', '.join(flavors)} but not sklearn"
        + (f" (its python_function loads through {loader})" if loader else "")
        + "; Steward serves MLflow's sklearn flavor; for other models register a module:function "
        "that loads and calls the model"
    )


def _columns(text: Any, root: Path) -> list[dict[str, Any]]:
    if not text:
        return []
    try:
        parsed = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError as error:
        raise InvalidInputError(f"{root / MLMODEL}: the signature is not JSON: {error}") from None
    return [dict(column) for column in parsed if isinstance(column, dict)]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
