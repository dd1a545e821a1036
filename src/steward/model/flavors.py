"""Model flavors: how an artifact is checked at registration and loaded to predict.

==================  =============================  ==================================================
flavor              artifact                       loading
==================  =============================  ==================================================
``sklearn``         a ``.skops`` file              skops, which refuses types nobody has trusted
``sklearn-pickle``  a ``.joblib``/``.pkl`` file    joblib, only when the user trusts the file
``onnx``            a ``.onnx`` file               onnxruntime (the ``onnx`` extra)
``python``          ``module:function``            imports the function; its module source is stored
==================  =============================  ==================================================

Each flavor is a ``Flavor`` registered through the ``steward_flavors`` hook (``steward.plugins``);
the four above are registered the same way a plugin's would be. Each loaded model answers
``predict(frame, task)`` with one score per row (the positive-class
probability for ``binary``, the class probabilities for ``multiclass``, the prediction otherwise).

>>> prepared = inspect_artifact("steward.model.flavors:_example_scorer")
>>> model = load_model(prepared.flavor, prepared.path, prepared.name)
>>> model.predict(pd.DataFrame({"x": [1.0]}), "regression")
array([2.])
"""

from __future__ import annotations

import importlib
import inspect
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from steward.errors import InvalidInputError, UnreadableArtifactError, UnsafeArtifactError
from steward.model.artifacts import sha256_of_file
from steward.plugins import hookimpl, plugin_manager

__all__ = [
    "FLAVORS",
    "Flavor",
    "LoadedModel",
    "OnnxFlavor",
    "PickleFlavor",
    "PreparedArtifact",
    "PythonFlavor",
    "SkopsFlavor",
    "available_flavors",
    "detect_flavor",
    "get_flavor",
    "inspect_artifact",
    "load_model",
    "save_sklearn",
    "steward_flavors",
]

#: The flavors that ship; plugins add more through the ``steward_flavors`` hook.
FLAVORS = ("sklearn", "sklearn-pickle", "onnx", "python")
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


class Flavor(Protocol):
    """How one kind of artifact is checked at registration, loaded, and asked for scores."""

    name: str

    def matches(self, spec: str) -> bool:
        """Whether ``spec`` (a path or ``module:function``) looks like this flavor's artifact."""
        ...

    def prepare(self, spec: str, trust: bool) -> PreparedArtifact:
        """Check that ``spec`` loads safely; return the file to store and what loading needs."""
        ...

    def load(
        self, path: Path, name: str, trusted_types: list[str], expected_sha256: str | None
    ) -> Any:
        """Load a stored artifact into the object ``predict`` takes."""
        ...

    def predict(self, model: Any, frame: pd.DataFrame, task: str) -> np.ndarray:
        """One score per row: P(positive) for binary, class probabilities for multiclass."""
        ...


class _SuffixFlavor:
    """A flavor recognised by its file's suffix."""

    name = ""
    suffixes: tuple[str, ...] = ()

    def matches(self, spec: str) -> bool:
        return Path(spec).suffix.lower() in self.suffixes

    def predict(self, model: Any, frame: pd.DataFrame, task: str) -> np.ndarray:
        if task in ("binary", "multiclass") and hasattr(model, "predict_proba"):
            probabilities = np.asarray(model.predict_proba(frame))
            return probabilities[:, 1] if task == "binary" else probabilities
        return np.asarray(model.predict(frame))


class SkopsFlavor(_SuffixFlavor):
    """scikit-learn saved with skops: loading refuses types nobody has trusted."""

    name = "sklearn"
    suffixes = (".skops",)

    def prepare(self, spec: str, trust: bool) -> PreparedArtifact:
        path = _existing_file(spec)
        trusted = _check_skops(path, trust)
        model = _load_skops(path, trusted)
        return PreparedArtifact(self.name, path, path.name, trusted, _sklearn_params(model))

    def load(
        self, path: Path, name: str, trusted_types: list[str], expected_sha256: str | None
    ) -> Any:
        return _load_skops(path, trusted_types)


class PickleFlavor(_SuffixFlavor):
    """scikit-learn saved with joblib or pickle: loaded only when the user trusts the file."""

    name = "sklearn-pickle"
    suffixes = (".joblib", ".pkl", ".pickle")

    def prepare(self, spec: str, trust: bool) -> PreparedArtifact:
        path = _existing_file(spec)
        if not trust:
            raise UnsafeArtifactError(
                f"{spec!r} is a pickle, and loading a pickle runs any code inside it; save the model "
                "with skops (skops.io.dump) instead, or pass --trust if you trust who made the file"
            )
        return PreparedArtifact(self.name, path, path.name, [], _sklearn_params(_load_pickle(path)))

    def load(
        self, path: Path, name: str, trusted_types: list[str], expected_sha256: str | None
    ) -> Any:
        return _load_pickle(path)


class OnnxFlavor(_SuffixFlavor):
    """An ONNX graph run by onnxruntime (the ``onnx`` extra)."""

    name = "onnx"
    suffixes = (".onnx",)

    def prepare(self, spec: str, trust: bool) -> PreparedArtifact:
        path = _existing_file(spec)
        _onnx_session(path)
        return PreparedArtifact(self.name, path, path.name)

    def load(
        self, path: Path, name: str, trusted_types: list[str], expected_sha256: str | None
    ) -> Any:
        return _onnx_session(path)

    def predict(self, model: Any, frame: pd.DataFrame, task: str) -> np.ndarray:
        return _onnx_predict(model, frame, task)


class PythonFlavor:
    """``module:function``: the function scores a frame; its module's source is what is stored."""

    name = "python"

    def matches(self, spec: str) -> bool:
        return ":" in spec and not Path(spec).exists()

    def prepare(self, spec: str, trust: bool) -> PreparedArtifact:
        function = _import_callable(spec)
        return PreparedArtifact(self.name, Path(inspect.getfile(function)), spec)

    def load(
        self, path: Path, name: str, trusted_types: list[str], expected_sha256: str | None
    ) -> Any:
        function = _import_callable(name)
        source = Path(inspect.getfile(function))
        if expected_sha256 and sha256_of_file(source) != expected_sha256:
            raise UnreadableArtifactError(
                f"the source of {name!r} ({source}) changed since it was registered; a version is "
                "immutable, so register the new code as a new version"
            )
        return function

    def predict(self, model: Any, frame: pd.DataFrame, task: str) -> np.ndarray:
        return np.asarray(model(frame))


@hookimpl
def steward_flavors() -> list[Flavor]:
    """The built-in flavors, registered through the same hook as a plugin's."""
    return [SkopsFlavor(), PickleFlavor(), OnnxFlavor(), PythonFlavor()]


def available_flavors() -> dict[str, Flavor]:
    """Every registered flavor by name, built-ins first (a plugin may not replace one)."""
    found: dict[str, Flavor] = {}
    for flavors in reversed(plugin_manager().hook.steward_flavors()):
        for flavor in flavors:
            found.setdefault(flavor.name, flavor)
    return found


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``; an unknown name says which exist."""
    flavors = available_flavors()
    if name not in flavors:
        raise InvalidInputError(f"unknown flavor {name!r}; choose one of {', '.join(flavors)}")
    return flavors[name]


def detect_flavor(spec: str) -> str:
    """The flavor an artifact's name implies: its suffix, or ``module:function`` for ``python``."""
    for flavor in available_flavors().values():
        if flavor.matches(spec):
            return flavor.name
    raise InvalidInputError(
        f"cannot tell the flavor of {spec!r}: expected a .skops, .joblib, .pkl or .onnx file, or "
        "module:function; pass --flavor explicitly"
    )


def inspect_artifact(
    spec: str, flavor: str | None = None, *, trust: bool = False
) -> PreparedArtifact:
    """Check that ``spec`` can be loaded safely as ``flavor`` (detected when ``None``)."""
    return get_flavor(flavor or detect_flavor(spec)).prepare(spec, trust)


def load_model(
    flavor: str,
    path: Path,
    name: str,
    trusted_types: list[str] | None = None,
    expected_sha256: str | None = None,
) -> LoadedModel:
    """Load a stored artifact back into something that predicts."""
    found = get_flavor(flavor)
    return LoadedModel(flavor, found.load(path, name, trusted_types or [], expected_sha256), found)


class LoadedModel:
    """A loaded artifact; ``predict(frame, task)`` returns scores as a numpy array."""

    def __init__(self, flavor: str, model: Any, implementation: Flavor | None = None) -> None:
        self.flavor = flavor
        self.model = model
        self.implementation = implementation or get_flavor(flavor)

    def predict(self, frame: pd.DataFrame, task: str) -> np.ndarray:
        return self.implementation.predict(self.model, frame, task)


def _existing_file(spec: str) -> Path:
    path = Path(spec)
    if not path.is_file():
        raise UnreadableArtifactError(f"artifact {spec!r} does not exist or is not a file")
    return path


def save_sklearn(model: Any, path: Path) -> Path:
    """Save a scikit-learn estimator or pipeline as a ``.skops`` file (loadable without pickle)."""
    import skops.io

    path = Path(path).with_suffix(".skops")
    skops.io.dump(model, path)
    _canonicalize_skops(path)
    return path


def _canonicalize_skops(path: Path) -> None:
    """Rewrite a .skops file so that the same model always saves to the same bytes.

    skops stamps zip entries with the time of saving, names objects by their memory address
    (``__id__``) and names the arrays' ``.npy`` entries by address too; content addressing needs
    bytes that depend on the model alone, or registering the same fitted model twice would go
    unnoticed. Addresses and array files are renumbered in order of appearance in the schema, which
    keeps shared references shared.
    """
    with zipfile.ZipFile(path) as source:
        entries = {info.filename: (info, source.read(info)) for info in source.infolist()}
    schema = json.loads(entries["schema.json"][1])
    files: dict[str, str] = {}
    schema = _renumber(schema, {}, files)
    renamed = {
        files.get(name, name): (info, _zero_padding(payload) if name.endswith(".npy") else payload)
        for name, (info, payload) in entries.items()
    }
    renamed["schema.json"] = (renamed["schema.json"][0], json.dumps(schema).encode())
    with zipfile.ZipFile(path, "w") as target:
        for name in sorted(renamed):
            info, payload = renamed[name]
            fixed = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = info.compress_type
            fixed.external_attr = info.external_attr
            target.writestr(fixed, payload)


def _zero_padding(payload: bytes) -> bytes:
    """An ``.npy`` file of a structured array (a tree's nodes) with its padding bytes zeroed.

    Padding between a record's fields holds whatever memory was there, so two copies of the same
    tree would otherwise save to different bytes.
    """
    array = np.load(io.BytesIO(payload), allow_pickle=False)
    if array.dtype.names is None:
        return payload
    clean = np.zeros(array.shape, dtype=array.dtype)
    for name in array.dtype.names:
        clean[name] = array[name]
    buffer = io.BytesIO()
    np.save(buffer, clean, allow_pickle=False)
    return buffer.getvalue()


def _renumber(node: Any, seen: dict[int, int], files: dict[str, str]) -> Any:
    """``node`` with every ``__id__`` and every array file named by order of appearance."""
    if isinstance(node, dict):
        renumbered: dict[str, Any] = {}
        for key, value in node.items():
            if key == "__id__":
                renumbered[key] = seen.setdefault(value, len(seen) + 1)
            elif key == "file" and isinstance(value, str) and value.endswith(".npy"):
                renumbered[key] = files.setdefault(value, f"array-{len(files) + 1:06d}.npy")
            else:
                renumbered[key] = _renumber(value, seen, files)
        return renumbered
    if isinstance(node, list):
        return [_renumber(item, seen, files) for item in node]
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
