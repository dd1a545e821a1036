"""Where a model version came from: its training data, its code and the libraries around it.

>>> frame = pd.DataFrame({"tenure": [1, 5, 9], "charges": [20.5, 70.0, 99.9]})
>>> fingerprint = fingerprint_frame(frame)
>>> fingerprint["n_rows"], fingerprint["schema"]
(3, {'tenure': 'int64', 'charges': 'float64'})
"""

from __future__ import annotations

import hashlib
import io
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from steward.data.contracts import read_table

__all__ = [
    "code_version",
    "fingerprint_frame",
    "library_versions",
    "read_table",
    "reference_sample",
]

_LIBRARIES = ("steward", "numpy", "pandas", "scikit-learn", "scipy", "skops", "onnxruntime")


def fingerprint_frame(frame: pd.DataFrame) -> dict[str, Any]:
    """A content hash, the row count and the schema of a frame.

    The hash covers column names, dtypes and every value (pandas' stable row hashes), so the same data
    read twice has the same fingerprint and any edited cell changes it.
    """
    digest = hashlib.sha256()
    schema = {str(name): str(dtype) for name, dtype in frame.dtypes.items()}
    digest.update(repr(sorted(schema.items())).encode())
    row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
    digest.update(row_hashes.tobytes())
    return {"sha256": digest.hexdigest(), "n_rows": len(frame), "schema": schema}


def reference_sample(frame: pd.DataFrame, n_rows: int, seed: int = 0) -> bytes:
    """Up to ``n_rows`` rows drawn without replacement, as Parquet bytes (kept for drift checks)."""
    sample = frame if len(frame) <= n_rows else frame.sample(n=n_rows, random_state=seed)
    buffer = io.BytesIO()
    sample.reset_index(drop=True).to_parquet(buffer, index=False)
    return buffer.getvalue()


def code_version(directory: Path | str = ".") -> dict[str, Any]:
    """The git commit of ``directory`` and whether its tracked files have uncommitted changes."""

    def git(*args: str) -> str | None:
        try:
            completed = subprocess.run(
                ["git", *args],
                cwd=directory,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return completed.stdout.strip() if completed.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None, "note": f"{directory} is not in a git repository"}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit,
        "dirty": bool(status),
        "repository": git("rev-parse", "--show-toplevel"),
    }


def library_versions() -> dict[str, str]:
    """Python and the versions of the libraries a model's behaviour depends on."""
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
