"""Model flavors: how an artifact is checked at registration and loaded to predict.

==================  =============================  ==================================================
flavor              artifact                       loading
==================  =============================  ==================================================
``sklearn``         a ``.skops`` file              skops, which refuses types nobody has trusted
``sklearn-pickle``  a ``.joblib``/``.pkl`` file    joblib, only when the user trusts the file
``onnx``            a ``.onnx`` file               onnxruntime (the ``onnx`` extra)
``python``          ``module:function``            imports the function; its module source is stored
==================  =============================  ==================================================

Each loaded model answers ``predict(frame, task)`` with one score per row (the positive-class
probability for ``binary``, the class probabilities for ``multiclass``, the prediction otherwise).

>>> prepared = inspect_artifact("steward.model.flavors:_example_scorer")
>>> model = load_model(prepared.flavor, prepared.path, prepared.name)
>>> model.predict(pd.DataFrame({"x": [1.0]}), "regression")
array([2.])
"""

from __future__ import annotations

import importlib
import inspect
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from steward.errors import InvalidInputError, UnreadableArtifactError, UnsafeArtifactError
from steward.model.artifacts import sha256_of_file

__all__ = [
    "FLAVORS",
    "LoadedModel",
    "PreparedArtifact",
    "detect_flavor",
    "inspect_artifact",
    "load_model",
    "save_sklearn",
]

FLAVORS = ("sklearn", "sklearn-pickle", "onnx", "python")
_SUFFIXES = {
    ".skops": "sklearn",
    ".joblib": "sklearn-pickle",
    ".pkl": "sklearn-pickle",
    ".pickle": "sklearn-pickle",
    ".onnx": "onnx",
}
# Types from these libraries are data, not code the user wrote; skops may load them without asking.
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


@dataclass(frozen=True)
class PreparedArtifact:
    """An artifact checked for registration: the file to store, and what loading it will need."""

    flavor: str
    path: Path
    name: str
    trusted_types: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)


def detect_flavor(spec: str) -> str:
    """The flavor an artifact's name implies: its suffix, or ``module:function`` for ``python``."""
    suffix = Path(spec).suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    if ":" in spec and not Path(spec).exists():
        return "python"
    raise InvalidInputError(
        f"cannot tell the flavor of {spec!r}: expected a .skops, .joblib, .pkl or .onnx file, or "
        "module:function; pass --flavor explicitly"
    )


def inspect_artifact(
    spec: str, flavor: str | None = None, *, trust: bool = False
) -> PreparedArtifact:
    """Check that ``spec`` can be loaded safely as ``flavor`` (detected when ``None``)."""
    flavor = flavor or detect_flavor(spec)
    if flavor not in FLAVORS:
        raise InvalidInputError(f"unknown flavor {flavor!r}; choose one of {', '.join(FLAVORS)}")
    if flavor == "python":
        function = _import_callable(spec)
        return PreparedArtifact("python", Path(inspect.getfile(function)), spec)
    path = Path(spec)
    if not path.is_file():
        raise UnreadableArtifactError(f"artifact {spec!r} does not exist or is not a file")
    if flavor == "sklearn":
        trusted = _check_skops(path, trust)
        model = _load_skops(path, trusted)
        return PreparedArtifact(flavor, path, path.name, trusted, _sklearn_params(model))
    if flavor == "sklearn-pickle":
        if not trust:
            raise UnsafeArtifactError(
                f"{spec!r} is a pickle, and loading a pickle runs any code inside it; save the model "
                "with skops (skops.io.dump) instead, or pass --trust if you trust who made the file"
            )
        return PreparedArtifact(flavor, path, path.name, [], _sklearn_params(_load_pickle(path)))
    _onnx_session(path)
    return PreparedArtifact(flavor, path, path.name)


def load_model(
    flavor: str,
    path: Path,
    name: str,
    trusted_types: list[str] | None = None,
    expected_sha256: str | None = None,
) -> LoadedModel:
    """Load a stored artifact back into something that predicts."""
    if flavor == "python":
        function = _import_callable(name)
        source = Path(inspect.getfile(function))
        if expected_sha256 and sha256_of_file(source) != expected_sha256:
            raise UnreadableArtifactError(
                f"the source of {name!r} ({source}) changed since it was registered; a version is "
                "immutable, so register the new code as a new version"
            )
        return LoadedModel(flavor, function)
    if flavor == "sklearn":
        return LoadedModel(flavor, _load_skops(path, trusted_types or []))
    if flavor == "sklearn-pickle":
        return LoadedModel(flavor, _load_pickle(path))
    if flavor == "onnx":
        return LoadedModel(flavor, _onnx_session(path))
    raise InvalidInputError(f"unknown flavor {flavor!r}; choose one of {', '.join(FLAVORS)}")


class LoadedModel:
    """A loaded artifact; ``predict(frame, task)`` returns scores as a numpy array."""

    def __init__(self, flavor: str, model: Any) -> None:
        self.flavor = flavor
        self.model = model

    def predict(self, frame: pd.DataFrame, task: str) -> np.ndarray:
        if self.flavor == "python":
            return np.asarray(self.model(frame))
        if self.flavor == "onnx":
            return _onnx_predict(self.model, frame, task)
        if task in ("binary", "multiclass") and hasattr(self.model, "predict_proba"):
            probabilities = np.asarray(self.model.predict_proba(frame))
            return probabilities[:, 1] if task == "binary" else probabilities
        return np.asarray(self.model.predict(frame))


def save_sklearn(model: Any, path: Path) -> Path:
    """Save a scikit-learn estimator or pipeline as a ``.skops`` file (loadable without pickle)."""
    import skops.io

    path = Path(path).with_suffix(".skops")
    skops.io.dump(model, path)
    _canonicalize_skops(path)
    return path


def _canonicalize_skops(path: Path) -> None:
    """Rewrite a .skops file so that the same model always saves to the same bytes.

    skops stamps zip entries with the time of saving and names objects by their memory address
    (``__id__``); content addressing needs bytes that depend on the model alone, or registering the
    same fitted model twice would go unnoticed. Addresses are renumbered in order of appearance,
    which keeps shared references shared.
    """
    with zipfile.ZipFile(path) as source:
        entries = [(info, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w") as target:
        for info, payload in sorted(entries, key=lambda entry: entry[0].filename):
            if info.filename == "schema.json":
                payload = json.dumps(_renumber(json.loads(payload), {})).encode()
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = info.compress_type
            fixed.external_attr = info.external_attr
            target.writestr(fixed, payload)


def _renumber(node: Any, seen: dict[int, int]) -> Any:
    if isinstance(node, dict):
        return {
            key: (
                seen.setdefault(value, len(seen) + 1) if key == "__id__" else _renumber(value, seen)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_renumber(item, seen) for item in node]
    return node


def _check_skops(path: Path, trust: bool) -> list[str]:
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(file=path)
    except Exception as error:  # skops raises many kinds on a bad file
        raise UnreadableArtifactError(
            f"{str(path)!r} is not a readable .skops file: {error}"
        ) from None
    foreign = [name for name in untrusted if not name.startswith(_TRUSTED_PREFIXES)]
    if foreign and not trust:
        raise UnsafeArtifactError(
            f"{str(path)!r} contains types that are not scikit-learn's, numpy's or scipy's: "
            f"{', '.join(foreign)}; loading them runs their code, so pass --trust if you trust them"
        )
    return list(untrusted)


def _load_skops(path: Path, trusted_types: list[str]) -> Any:
    import skops.io

    try:
        return skops.io.load(path, trusted=trusted_types)
    except Exception as error:
        raise UnreadableArtifactError(f"cannot load {str(path)!r} with skops: {error}") from None


def _load_pickle(path: Path) -> Any:
    import joblib

    try:
        return joblib.load(path)
    except Exception as error:
        raise UnreadableArtifactError(f"cannot load {str(path)!r} with joblib: {error}") from None


def _sklearn_params(model: Any) -> dict[str, Any]:
    """The estimator's own parameters, kept to the JSON-friendly ones (the registry's ``params``)."""
    if not hasattr(model, "get_params"):
        return {}
    params = {}
    for key, value in model.get_params(deep=True).items():
        if value is None or isinstance(value, bool | int | float | str):
            params[key] = value
    return params


def _import_callable(spec: str) -> Callable[..., Any]:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise InvalidInputError(f"python flavor expects module:function, got {spec!r}")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise UnreadableArtifactError(
            f"cannot import {spec!r}: {error}; check that the module is on PYTHONPATH"
        ) from None
    if not callable(target):
        raise UnreadableArtifactError(f"{spec!r} is not callable; point at a function")
    return target


def _onnx_session(path: Path) -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise UnreadableArtifactError(
            "ONNX models need onnxruntime; install it with pip install 'steward[onnx]'"
        ) from None
    try:
        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:
        raise UnreadableArtifactError(
            f"{str(path)!r} is not a loadable ONNX model: {error}"
        ) from None


def _onnx_predict(session: Any, frame: pd.DataFrame, task: str) -> np.ndarray:
    inputs = session.get_inputs()
    if len(inputs) == 1:
        feed = {inputs[0].name: frame.to_numpy(dtype=np.float32)}
    else:  # one input per column, as skl2onnx writes for mixed-type pipelines
        feed = {item.name: _onnx_column(frame[item.name], item.type) for item in inputs}
    outputs = session.run(None, feed)
    if task in ("binary", "multiclass") and len(outputs) > 1:
        probabilities = outputs[1]
        if isinstance(probabilities, list):  # ZipMap: one {class: probability} dict per row
            probabilities = np.array([list(row.values()) for row in probabilities])
        probabilities = np.asarray(probabilities, dtype=float)
        return probabilities[:, 1] if task == "binary" else probabilities
    return np.asarray(outputs[0]).reshape(len(frame), -1).squeeze(axis=1)


def _onnx_column(column: pd.Series, onnx_type: str) -> np.ndarray:
    if "string" in onnx_type:
        return column.astype(str).to_numpy().reshape(-1, 1)
    if "int64" in onnx_type:
        return column.to_numpy(dtype=np.int64).reshape(-1, 1)
    return column.to_numpy(dtype=np.float32).reshape(-1, 1)


def _example_scorer(frame: pd.DataFrame) -> np.ndarray:
    """A tiny ``python``-flavor model used in the docs: twice the first column."""
    return np.asarray(frame.iloc[:, 0], dtype=float) * 2
