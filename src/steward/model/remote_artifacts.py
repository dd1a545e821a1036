"""Model files and reference samples on object storage: any fsspec URL (``s3://``, ``gs://``,
``abfs://``, ``file://``).

The layout is the local store's, under the URL: ``<url>/sha256/ab/cdef...``. A file is written
whole or not at all: on S3, Google Cloud Storage and Azure Blob Storage an object becomes visible
only once its upload completes (one PUT, or the completion of a multipart, resumable or block-list
upload), and on ``file://`` it is written to a temporary file, fsynced and renamed, as the local
store does. Readers never see part of a file.

Models load from a local file: ``open_path`` downloads the object into ``cache_dir``
(``<workspace>/.steward/artifact-cache/sha256/..``), checks that its bytes hash to the digest it is
stored under, and only then renames it into place, so what is in the cache has been verified.

Example::

    store = RemoteArtifactStore("s3://models/steward", Path(".steward/artifact-cache"))
    digest = store.put_bytes(b"hello")      # s3://models/steward/sha256/2c/f24d...
    store.open_path(digest).read_bytes()    # b'hello', from the verified local copy

Credentials and endpoints come from each backend's own configuration: for S3 the standard AWS
variables (``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL`` for an S3-compatible
server such as MinIO), for the others their usual variables; any fsspec option can also be given as
``FSSPEC_<PROTOCOL>_<OPTION>`` (e.g. ``FSSPEC_S3_ENDPOINT_URL``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fsspec

from steward._util.hashing import file_sha256
from steward.errors import ArtifactError, StewardError, UnreadableArtifactError
from steward.model.artifacts import ArtifactStore

__all__ = ["RemoteArtifactStore"]


class RemoteArtifactStore:
    """Files addressed by their SHA-256 at an fsspec URL, opened through a verified local cache."""

    def __init__(self, url: str, cache_dir: Path) -> None:
        self.url = url.rstrip("/")
        self.cache = ArtifactStore(Path(cache_dir))
        self._fs: Any
        self._fs, self._root = fsspec.core.url_to_fs(self.url)
        self._root = str(self._root).rstrip("/")
        # file:// is a folder (often a network mount): the local store's temp + fsync + rename
        self._folder = (
            ArtifactStore(Path(self._root)) if urlsplit(self.url).scheme == "file" else None
        )

    def key_for(self, digest: str) -> str:
        """The object's path inside the filesystem, e.g. ``bucket/prefix/sha256/ab/cdef...``."""
        return f"{self._root}/sha256/{digest[:2]}/{digest[2:]}"

    def url_for(self, digest: str) -> str:
        return f"{self.url}/sha256/{digest[:2]}/{digest[2:]}"

    def exists(self, digest: str) -> bool:
        with self._reaching("look up", digest):
            return bool(self._fs.isfile(self.key_for(digest)))

    def put_file(self, source: Path) -> str:
        """Upload ``source`` under its digest (once) and return the digest."""
        source = Path(source)
        if not source.is_file():
            raise UnreadableArtifactError(
                f"artifact {str(source)!r} does not exist or is not a file; check the path"
            )
        if self._folder is not None:
            return self._folder.put_file(source)
        digest = file_sha256(source)
        if not self.exists(digest):
            with self._reaching("store", digest):
                self._fs.put_file(str(source), self.key_for(digest))
        return digest

    def put_bytes(self, data: bytes) -> str:
        if self._folder is not None:
            return self._folder.put_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            with self._reaching("store", digest):
                self._fs.pipe_file(self.key_for(digest), data)
        return digest

    def read_bytes(self, digest: str) -> bytes:
        return self.open_path(digest).read_bytes()

    def open_path(self, digest: str) -> Path:
        """A local copy of the artifact, downloaded once and checked against its digest."""
        cached = self.cache.path_for(digest)
        if cached.is_file():
            return cached
        cached.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temp_name = tempfile.mkstemp(dir=cached.parent, prefix=".tmp-")
        os.close(descriptor)
        try:
            self._download(digest, temp_name)
            actual = file_sha256(Path(temp_name))
            if actual != digest:
                raise UnreadableArtifactError(
                    f"artifact sha256:{digest} at {self.url_for(digest)} holds bytes whose SHA-256 "
                    f"is {actual}: it was changed or corrupted in the object store; restore the "
                    "object (e.g. from bucket versioning) or register the model again"
                )
            os.chmod(temp_name, 0o444)
            os.replace(temp_name, cached)
        finally:
            Path(temp_name).unlink(missing_ok=True)
        return cached

    def verify(self, digest: str) -> bool:
        """True when the stored object still hashes to its name; reads the object, not the cache."""
        with self._reaching("read", digest):
            try:
                with self._fs.open(self.key_for(digest), "rb") as handle:
                    return bool(hashlib.file_digest(handle, "sha256").hexdigest() == digest)
            except FileNotFoundError:
                raise self._missing(digest) from None

    def size(self, digest: str) -> int:
        """Bytes of the stored object."""
        with self._reaching("look up", digest):
            try:
                return int(self._fs.size(self.key_for(digest)))
            except FileNotFoundError:
                raise self._missing(digest) from None

    def remove(self, digest: str) -> None:
        """Delete the object and the local copy; nothing happens when they are not there."""
        if self.exists(digest):
            with self._reaching("delete", digest):
                self._fs.rm_file(self.key_for(digest))
        self.cache.remove(digest)

    def _download(self, digest: str, target: str) -> None:
        with self._reaching("read", digest):
            try:
                self._fs.get_file(self.key_for(digest), target)
            except FileNotFoundError:
                raise self._missing(digest) from None

    def _missing(self, digest: str) -> UnreadableArtifactError:
        return UnreadableArtifactError(
            f"artifact sha256:{digest[:12]} is missing from {self.url} "
            f"(no object {self.url_for(digest)}); restore it or point STEWARD_ARTIFACTS_URL at "
            "the store that holds it"
        )

    @contextmanager
    def _reaching(self, action: str, digest: str) -> Iterator[None]:
        """Turn a backend's failure (credentials, network, permissions) into an ArtifactError."""
        try:
            yield
        except StewardError:
            raise
        except Exception as error:  # each backend raises its own types (botocore, aiohttp, azure)
            kind = UnreadableArtifactError if action in {"read", "look up"} else ArtifactError
            raise kind(
                f"could not {action} artifact sha256:{digest[:12]} at {self.url}: "
                f"{type(error).__name__}: {error}; check the credentials, the endpoint and that "
                "the bucket exists"
            ) from error
