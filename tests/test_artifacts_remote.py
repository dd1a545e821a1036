"""Artifacts on object storage: a real S3 API (moto's threaded server on a free port) and file://.

The S3 tests need ``moto[server]`` and ``s3fs`` (the dev and s3 extras). They skip without them on
a laptop, and fail in CI, where they must run.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from steward import Steward
from steward.cli.main import cli
from steward.errors import ArtifactError, ConfigError, UnreadableArtifactError
from steward.model.artifacts import ArtifactStore
from steward.model.remote_artifacts import RemoteArtifactStore
from steward.settings import Settings

from .conftest import CONFIG, Server, require_module

BUCKET = "steward-artifacts"


@pytest.fixture(scope="module")
def s3(s3_endpoint: str) -> Any:
    """A client of the local S3 server (``s3_endpoint``), with this module's bucket."""
    client = require_module("boto3").client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def _workspace(root: Path, database_url: str, artifacts_url: str) -> Steward:
    root.mkdir(parents=True, exist_ok=True)
    (root / "steward.yaml").write_text(CONFIG)
    steward = Steward.open(
        root, database_url=database_url, user="tester", artifacts_url=artifacts_url
    )
    steward.init()
    steward.apply()
    return steward


@pytest.fixture
def remote(tmp_path: Path, s3: Any) -> Iterator[tuple[Steward, str]]:
    """A workspace whose artifacts live under s3://BUCKET/<this test>, with an SQLite store."""
    prefix = f"steward/{tmp_path.name}"
    steward = _workspace(
        tmp_path / "first", f"sqlite:///{tmp_path / 'steward.db'}", f"s3://{BUCKET}/{prefix}"
    )
    yield steward, prefix
    steward.close()


def _key(prefix: str, digest: str) -> str:
    return f"{prefix}/sha256/{digest[:2]}/{digest[2:]}"


def _object(s3: Any, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def _keys(s3: Any, prefix: str) -> set[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {item["Key"] for item in listed}


def _records(frame: pd.DataFrame, n_rows: int) -> list[dict[str, Any]]:
    return list(json.loads(frame.head(n_rows).to_json(orient="records")))


# Settings


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("ftp://host/models", "unknown scheme"),
        ("s3://", "names no bucket"),
        ("file://relative/path", "file:///absolute/path"),
        ("s3://bucket/prefix?versionId=3", "query or fragment"),
    ],
)
def test_a_malformed_artifacts_url_is_a_config_error_naming_it(url: str, names: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.load({"artifacts_url": url}, environ={})
    assert names in str(raised.value)
    assert url.rstrip("/") in str(raised.value)


def test_a_missing_backend_names_the_url_and_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec

    def without_backends(name: str, package: str | None = None) -> Any:
        return None if name in {"s3fs", "gcsfs", "adlfs"} else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", without_backends)
    for url, extra in [
        ("s3://models/steward", "steward[s3]"),
        ("gs://models/steward", "steward[gcs]"),
        ("abfs://models/steward", "steward[azure]"),
    ]:
        with pytest.raises(ConfigError) as raised:
            Settings.load(environ={"STEWARD_ARTIFACTS_URL": url})
        assert url in str(raised.value)
        assert f"pip install '{extra}'" in str(raised.value)


def test_artifacts_dir_and_artifacts_url_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="both set"):
        Settings.load({"artifacts_dir": str(tmp_path), "artifacts_url": tmp_path.as_uri()})


def test_an_empty_artifacts_url_keeps_the_local_store(tmp_path: Path) -> None:
    steward = Steward.open(tmp_path)
    assert isinstance(steward.artifacts, ArtifactStore)
    assert steward.settings.artifacts_url == ""


# file:// through fsspec


def test_a_file_url_store_round_trips_verifies_and_removes(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    store = RemoteArtifactStore(folder.as_uri() + "/", tmp_path / "cache")
    data = b"a reference sample"
    digest = store.put_bytes(data)
    assert digest == hashlib.sha256(data).hexdigest()
    stored = folder / "sha256" / digest[:2] / digest[2:]
    assert stored.read_bytes() == data
    assert [path.name for path in stored.parent.iterdir()] == [digest[2:]]  # no temp file left
    source = tmp_path / "model.bin"
    source.write_bytes(bytes(range(256)) * 1000)
    file_digest = store.put_file(source)
    assert file_digest == hashlib.sha256(source.read_bytes()).hexdigest()
    assert store.size(file_digest) == 256_000
    assert store.exists(file_digest) and store.verify(file_digest)
    opened = store.open_path(file_digest)
    assert opened == tmp_path / "cache" / "sha256" / file_digest[:2] / file_digest[2:]
    assert opened.read_bytes() == source.read_bytes()
    store.remove(file_digest)
    assert not store.exists(file_digest) and not opened.exists()
    with pytest.raises(UnreadableArtifactError, match=file_digest[:12]):
        store.open_path(file_digest)
    store.remove(file_digest)  # removing what is gone is a no-op


def test_a_changed_file_is_refused_and_never_reaches_the_cache(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    store = RemoteArtifactStore(folder.as_uri(), tmp_path / "cache")
    digest = store.put_bytes(b"the real model")
    stored = folder / "sha256" / digest[:2] / digest[2:]
    stored.chmod(0o644)
    stored.write_bytes(b"something else")
    assert not store.verify(digest)
    with pytest.raises(UnreadableArtifactError) as raised:
        store.open_path(digest)
    assert digest in str(raised.value)
    assert not any(path.is_file() for path in (tmp_path / "cache").rglob("*"))


# S3


def test_a_model_on_s3_serves_the_scores_of_the_model_itself(
    tmp_path: Path,
    remote: tuple[Steward, str],
    s3: Any,
    telco: tuple[pd.DataFrame, pd.Series],
    telco_model: Any,
) -> None:
    steward, prefix = remote
    frame, _ = telco
    registration = steward.register_model(telco_model, system="churn", data=frame.head(500))
    version = registration.version
    steward.move_alias("churn", "champion", version.version)
    digest = version.artifact_sha256
    # the bucket holds the model under its digest, whole; nothing was written locally
    body = _object(s3, _key(prefix, digest))
    assert hashlib.sha256(body).hexdigest() == digest
    assert version.artifact_size == len(body)
    assert not steward.settings.artifacts_dir.exists()
    expected = telco_model.predict_proba(frame.head(50).drop(columns=["customerID"]))[:, 1]
    scores = steward.load_model("churn").predict(frame.head(50), "binary")
    np.testing.assert_array_equal(scores, expected)
    # another process, with a workspace folder of its own (an empty cache), serves the same model
    second = tmp_path / "second"
    second.mkdir()
    (second / "steward.yaml").write_text(CONFIG)
    url = steward.settings.artifacts_url
    server = Server(
        second, steward.settings.database_url, environment={"STEWARD_ARTIFACTS_URL": url}
    )
    try:
        server.start()
        answer = httpx.post(
            f"{server.url}/v1/systems/churn/predict", json={"records": _records(frame, 50)}
        )
    finally:
        server.close()
    assert answer.status_code == 200, answer.text
    served = [prediction["score"] for prediction in answer.json()["predictions"]]
    np.testing.assert_array_equal(served, expected)
    cached = second / ".steward" / "artifact-cache" / "sha256" / digest[:2] / digest[2:]
    assert cached.read_bytes() == body


def test_a_tampered_object_is_refused_naming_its_digest(
    tmp_path: Path, remote: tuple[Steward, str], s3: Any, telco_model: Any
) -> None:
    steward, prefix = remote
    digest = steward.register_model(telco_model, system="churn").version.artifact_sha256
    s3.put_object(Bucket=BUCKET, Key=_key(prefix, digest), Body=b"not the model")
    fresh = Steward.open(  # another workspace folder: an empty cache
        tmp_path / "other",
        database_url=steward.settings.database_url,
        artifacts_url=steward.settings.artifacts_url,
        user="tester",
    )
    fresh_cache = fresh.settings.store_dir / "artifact-cache"
    try:
        assert not fresh.artifacts.verify(digest)
        with pytest.raises(UnreadableArtifactError) as raised:
            fresh.load_model("churn", 1)
    finally:
        fresh.close()
    assert digest in str(raised.value)
    assert "s3://" in str(raised.value)
    assert not any(path.is_file() for path in fresh_cache.rglob("*"))


def test_reference_samples_and_erasure_work_on_s3(
    remote: tuple[Steward, str], s3: Any, telco: tuple[pd.DataFrame, pd.Series], telco_model: Any
) -> None:
    steward, prefix = remote
    frame, _ = telco
    version = steward.register_model(telco_model, system="churn", data=frame.head(300)).version
    old = version.data["reference_sha256"]
    stored = pd.read_parquet(io.BytesIO(_object(s3, _key(prefix, old))))
    pd.testing.assert_frame_equal(steward.reference_data("churn", 1), stored)
    subject = str(stored["customerID"].iloc[7])
    n_subject = int((stored["customerID"] == subject).sum())
    assert n_subject >= 1
    settings = steward.settings
    result = CliRunner().invoke(
        cli,
        [
            "--workspace",
            str(settings.workspace),
            "--database-url",
            settings.database_url,
            "--artifacts-url",
            settings.artifacts_url,
            "--user",
            "dpo",
            "erase",
            "--entity",
            subject,
        ],
    )
    assert result.exit_code == 0, result.output
    new = steward.version("churn", 1).data["reference_sha256"]
    assert new != old
    keys = _keys(s3, prefix)
    assert _key(prefix, old) not in keys and _key(prefix, new) in keys
    assert not steward.artifacts.exists(old)
    assert not (settings.store_dir / "artifact-cache" / "sha256" / old[:2] / old[2:]).exists()
    after = pd.read_parquet(io.BytesIO(_object(s3, _key(prefix, new))))
    assert subject not in set(after["customerID"])
    assert len(after) == len(stored) - n_subject
    pd.testing.assert_frame_equal(
        after, stored[stored["customerID"] != subject].reset_index(drop=True)
    )


def test_a_missing_object_names_the_digest_and_the_store(
    remote: tuple[Steward, str], s3: Any
) -> None:
    steward, prefix = remote
    digest = hashlib.sha256(b"never stored").hexdigest()
    with pytest.raises(UnreadableArtifactError) as raised:
        steward.artifacts.open_path(digest)
    assert digest[:12] in str(raised.value) and f"s3://{BUCKET}/{prefix}" in str(raised.value)
    assert not steward.artifacts.exists(digest)


def test_a_missing_bucket_is_an_artifact_error_naming_the_url(
    tmp_path: Path, s3: Any, telco_model: Any
) -> None:
    url = "s3://no-such-bucket/steward"
    steward = _workspace(tmp_path / "ws", f"sqlite:///{tmp_path / 'steward.db'}", url)
    try:
        with pytest.raises(ArtifactError) as raised:
            steward.register_model(telco_model, system="churn")
        assert url in str(raised.value) and "bucket exists" in str(raised.value)
        assert steward.versions("churn") == []  # nothing registered without its artifact
    finally:
        steward.close()
