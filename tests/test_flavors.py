"""Flavors: safe loading by default, pickles only on trust, ONNX and plain callables."""

from __future__ import annotations

import copy
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from steward.errors import InvalidInputError, UnreadableArtifactError, UnsafeArtifactError
from steward.model.flavors import detect_flavor, inspect_artifact, load_model, save_sklearn


@pytest.fixture
def small_data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    target = (frame["a"] + rng.normal(scale=0.5, size=200) > 0).astype(int).to_numpy()
    return frame, target


def test_flavor_is_detected_from_the_suffix_or_the_colon() -> None:
    assert detect_flavor("m.skops") == "sklearn"
    assert detect_flavor("m.joblib") == "sklearn-pickle"
    assert detect_flavor("m.onnx") == "onnx"
    assert detect_flavor("pkg.module:score") == "python"
    with pytest.raises(InvalidInputError, match="cannot tell the flavor of 'model.bin'"):
        detect_flavor("model.bin")


def test_saving_the_same_model_twice_gives_the_same_bytes(small_data, tmp_path: Path) -> None:
    model = LogisticRegression().fit(*small_data)
    first = save_sklearn(model, tmp_path / "a.skops").read_bytes()
    second = save_sklearn(model, tmp_path / "b.skops").read_bytes()
    assert first == second


@pytest.mark.parametrize(
    "estimator",
    [
        LogisticRegression(),
        RandomForestClassifier(n_estimators=5, random_state=0),
        GradientBoostingClassifier(n_estimators=5, random_state=0),
    ],
    ids=["logistic", "forest", "boosting"],
)
def test_a_copy_of_a_fitted_model_saves_to_the_same_bytes(
    small_data, tmp_path: Path, estimator: object
) -> None:
    """Array files were named by memory address, so a copy (new arrays) saved to other bytes."""
    model = estimator.fit(*small_data)  # type: ignore[attr-defined]
    first = save_sklearn(model, tmp_path / "a.skops").read_bytes()
    second = save_sklearn(copy.deepcopy(model), tmp_path / "b.skops").read_bytes()
    assert first == second
    prepared = inspect_artifact(str(tmp_path / "b.skops"))
    loaded = load_model(prepared.flavor, prepared.path, prepared.name, prepared.trusted_types)
    np.testing.assert_allclose(
        loaded.predict(small_data[0], "binary"), model.predict_proba(small_data[0])[:, 1]
    )


def test_pickle_is_refused_unless_trusted(small_data, tmp_path: Path) -> None:
    model = LogisticRegression().fit(*small_data)
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    with pytest.raises(UnsafeArtifactError, match="loading a pickle runs any code"):
        inspect_artifact(str(path))
    prepared = inspect_artifact(str(path), trust=True)
    loaded = load_model(prepared.flavor, path, prepared.name)
    np.testing.assert_allclose(
        loaded.predict(small_data[0], "binary"), model.predict_proba(small_data[0])[:, 1]
    )


class Doubler:
    """A class of the user's own, which skops must not load without being told to trust it."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(frame.iloc[:, 0]) * 2


def test_skops_file_with_foreign_types_needs_trust(small_data, tmp_path: Path) -> None:
    path = tmp_path / "foreign.skops"
    skops.io.dump(Doubler(), path)
    with pytest.raises(UnsafeArtifactError, match=r"test_flavors\.Doubler"):
        inspect_artifact(str(path))
    prepared = inspect_artifact(str(path), trust=True)
    assert any(name.endswith("Doubler") for name in prepared.trusted_types)


def test_corrupt_skops_file_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "broken.skops"
    path.write_bytes(b"not a zip")
    with pytest.raises(UnreadableArtifactError, match="not a readable .skops file"):
        inspect_artifact(str(path))


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableArtifactError, match="does not exist"):
        inspect_artifact(str(tmp_path / "nope.skops"))


def test_onnx_model_predicts_like_the_scikit_learn_original(small_data, tmp_path: Path) -> None:
    from skl2onnx import to_onnx

    frame, target = small_data
    model = LogisticRegression().fit(frame, target)
    path = tmp_path / "model.onnx"
    onnx_model = to_onnx(
        model, frame.to_numpy(dtype=np.float32), options={"zipmap": False}, target_opset=17
    )
    path.write_bytes(onnx_model.SerializeToString())
    prepared = inspect_artifact(str(path))
    loaded = load_model(prepared.flavor, path, prepared.name)
    np.testing.assert_allclose(
        loaded.predict(frame, "binary"), model.predict_proba(frame)[:, 1], rtol=1e-5, atol=1e-6
    )


def test_python_callable_is_pinned_to_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "scorer_for_test.py"
    module.write_text("def score(frame):\n    return frame['x'] * 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    prepared = inspect_artifact("scorer_for_test:score")
    assert prepared.flavor == "python" and prepared.path == module
    from steward.model.artifacts import sha256_of_file

    digest = sha256_of_file(module)
    loaded = load_model("python", module, prepared.name, expected_sha256=digest)
    np.testing.assert_array_equal(loaded.predict(pd.DataFrame({"x": [1, 2]}), "regression"), [3, 6])
    module.write_text(textwrap.dedent("def score(frame):\n    return frame['x'] * 4\n"))
    sys.modules.pop("scorer_for_test", None)
    with pytest.raises(UnreadableArtifactError, match="changed since it was registered"):
        load_model("python", module, prepared.name, expected_sha256=digest)


def test_python_spec_that_does_not_import_says_why() -> None:
    with pytest.raises(UnreadableArtifactError, match="cannot import 'no_such_module:score'"):
        inspect_artifact("no_such_module:score")
