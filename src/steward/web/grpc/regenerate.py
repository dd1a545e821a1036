"""Regenerate the Python modules of ``open_inference.proto`` (run after editing the .proto).

Run from the repository root, with grpcio-tools installed::

    python -m steward.web.grpc.regenerate

It writes ``open_inference_pb2.py``, ``open_inference_pb2.pyi`` and ``open_inference_pb2_grpc.py``
beside the .proto, each marked generated for ruff (lint and format); they are committed, so
installing Steward needs no compiler. The ``protobuf`` and ``grpcio`` versions the generated code
asks for at import are the ``grpc`` extra's lower bounds.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["main"]

PROTO = Path(__file__).with_name("open_inference.proto")
GENERATED = ("open_inference_pb2.py", "open_inference_pb2.pyi", "open_inference_pb2_grpc.py")
#: Generated code is neither linted nor formatted: the next regeneration would undo either.
MARK = "# ruff: noqa\n# fmt: off\n"


def main() -> int:
    """Compile ``open_inference.proto``; the exit status of ``protoc``."""
    from grpc_tools import protoc  # grpcio-tools: a build tool, not a runtime dependency

    source_root = PROTO.parents[3]  # src/, so the modules import as steward.web.grpc.*
    relative = PROTO.relative_to(source_root)
    status: int = protoc.main(
        [
            "protoc",
            f"-I{source_root}",
            f"--python_out={source_root}",
            f"--pyi_out={source_root}",
            f"--grpc_python_out={source_root}",
            str(relative),
        ]
    )
    if status == 0:
        for name in GENERATED:
            _mark_generated(PROTO.with_name(name))
    return status


def _mark_generated(path: Path) -> None:
    text = path.read_text()
    if not text.startswith(MARK):
        path.write_text(MARK + text)


if __name__ == "__main__":
    sys.exit(main())
