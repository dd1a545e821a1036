"""Content-addressed storage for model files and reference samples.

A file is stored once under its SHA-256 (``sha256/ab/cdef...``); storing the same bytes again is free and
returns the same digest, which is how the registry notices a model registered twice.

>>> store = ArtifactStore(Path(tempfile.mkdtemp()))
>>> digest = store.put_bytes(b"hello")
>>> store.read_bytes(digest)
b'hello'

With the ``artifacts_url`` setting the files live on object storage instead (``s3://``, ``gs://``,
``abfs://``, ``file://``): ``open_artifact_store`` then returns a ``RemoteArtifactStore`` with the
same methods, which keeps a verified local copy of each file it is asked to open.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

from steward._util.hashing import file_sha256
from steward.errors import UnreadableArtifactError

__all__ = ["ArtifactStore", "Artifacts", "sha256_of_file"]


sha256_of_file = file_sha256  # the name the registry and flavors use


class Artifacts(Protocol):
    """What the workspace needs of an artifact store, local or on object storage."""

    def exists(self, digest: str) -> bool: ...
    def put_file(self, source: Path) -> str: ...
    def put_bytes(self, data: bytes) -> str: ...
    def read_bytes(self, digest: str) -> bytes: ...
    def open_path(self, digest: str) -> Path: ...
    def verify(self, digest: str) -> bool: ...
    def size(self, digest: str) -> int: ...
    def remove(self, digest: str) -> None: ...


class ArtifactStore:
    """Files addressed by the SHA-256 of their bytes, written atomically (temp file, fsync, rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, digest: str) -> Path:
        return self.root / "sha256" / digest[:2] / digest[2:]

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).is_file()

    def put_file(self, source: Path) -> str:
        """Copy ``source`` into the store and return its digest."""
        source = Path(source)
        if not source.is_file():
            raise UnreadableArtifactError(
                f"artifact {str(source)!r} does not exist or is not a file; check the path"
            )
        digest = sha256_of_file(source)
        if not self.exists(digest):
            self._write(digest, lambda handle: _copy_into(source, handle))
        return digest

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            self._write(digest, lambda handle: handle.write(data))
        return digest

    def read_bytes(self, digest: str) -> bytes:
        return self.open_path(digest).read_bytes()

    def open_path(self, digest: str) -> Path:
        """The local path of a stored artifact, checked to still hold the bytes it is named after."""
        path = self.path_for(digest)
        if not path.is_file():
            raise UnreadableArtifactError(
                f"artifact sha256:{digest[:12]} is missing from {self.root}; "
                "restore the artifacts folder or point STEWARD_ARTIFACTS_DIR at it"
            )
        return path

    def verify(self, digest: str) -> bool:
        """True when the stored file still hashes to its name (no corruption or tampering)."""
        return sha256_of_file(self.open_path(digest)) == digest

    def size(self, digest: str) -> int:
        """Bytes of a stored artifact."""
        return self.open_path(digest).stat().st_size

    def remove(self, digest: str) -> None:
        """Delete a stored artifact; nothing happens when it is not there."""
        self.path_for(digest).unlink(missing_ok=True)

    def _write(self, digest: str, write: object) -> None:
        target = self.path_for(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                write(handle)  # type: ignore[operator]
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp_name, 0o444)
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise


def _copy_into(source: Path, handle: object) -> None:
    with source.open("rb") as reader:
        shutil.copyfileobj(reader, handle)  # type: ignore[arg-type]
