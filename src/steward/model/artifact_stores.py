"""Which artifact store a workspace uses: its local folder, or the store at an fsspec URL.

The remote store (and fsspec with it) is imported only when ``artifacts_url`` is set.
"""

from __future__ import annotations

from pathlib import Path

from steward.model.artifacts import Artifacts, ArtifactStore

__all__ = ["open_artifact_store"]


def open_artifact_store(directory: Path, url: str = "", cache_dir: Path | None = None) -> Artifacts:
    """The local store in ``directory``, or, when ``url`` is set, the store at that fsspec URL with
    its local copies in ``cache_dir`` (default ``directory``'s sibling ``artifact-cache``).

    >>> open_artifact_store(Path("/srv/ws/.steward/artifacts")).root
    PosixPath('/srv/ws/.steward/artifacts')
    """
    if not url:
        return ArtifactStore(directory)
    from steward.model.remote_artifacts import RemoteArtifactStore  # fsspec only when used

    return RemoteArtifactStore(url, cache_dir or Path(directory).parent / "artifact-cache")
