"""The Open Inference Protocol's tensor bytes: the binary data extension and gRPC raw contents.

A tensor's raw bytes are its elements in row-major order, little-endian, at their datatype's width
(``BOOL`` one byte, ``FP64`` eight); a ``BYTES`` tensor is each element prefixed by its length as a
4-byte little-endian unsigned integer. Over HTTP, a request or response using the binary data
extension is a JSON header followed by the tensors' bytes, the header's length in the
``Inference-Header-Content-Length`` HTTP header and each tensor's byte count in its
``parameters.binary_data_size``; over gRPC, the same bytes travel in ``raw_input_contents`` and
``raw_output_contents``.

Example::

    >>> raw = encode_tensor("FP64", [0.25, 0.5])
    >>> decode_tensor("FP64", raw, "score")
    [0.25, 0.5]
    >>> decode_tensor("BYTES", encode_tensor("BYTES", ["yes", "no"]), "decision")
    ['yes', 'no']
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from steward.errors import InvalidInputError

__all__ = [
    "DATATYPES",
    "HEADER",
    "decode_tensor",
    "decode_text",
    "encode_tensor",
    "split_body",
]

#: The HTTP header that gives the JSON part's length in a binary-extension body.
HEADER = "Inference-Header-Content-Length"

#: Each protocol datatype and the little-endian numpy type of its elements (``BYTES``: none).
DATATYPES: dict[str, str | None] = {
    "BOOL": "|b1",
    "UINT8": "|u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "|i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
    "BYTES": None,
}
_LENGTH = struct.Struct("<I")


def decode_tensor(datatype: str, raw: bytes, name: str) -> list[Any]:
    """The elements of the raw tensor ``raw`` as Python values (``BYTES`` as UTF-8 text).

    ``name`` is the tensor's, for the error message when the bytes do not fit the datatype.
    """
    if datatype == "BYTES":
        return [decode_text(item, name) for item in _split_bytes(raw, name)]
    dtype = _dtype(datatype, name)
    if len(raw) % dtype.itemsize:
        raise InvalidInputError(
            f"input {name!r}: {len(raw)} bytes is not a whole number of {datatype} elements "
            f"({dtype.itemsize} bytes each); send the tensor's raw little-endian bytes"
        )
    values: list[Any] = np.frombuffer(raw, dtype=dtype).tolist()
    return values


def encode_tensor(datatype: str, values: Sequence[Any]) -> bytes:
    """The raw bytes of a tensor holding ``values`` (``None`` in ``BYTES`` is the empty string)."""
    if datatype == "BYTES":
        parts = []
        for value in values:
            item = value if isinstance(value, bytes) else str("" if value is None else value)
            data = item if isinstance(item, bytes) else item.encode()
            parts.append(_LENGTH.pack(len(data)) + data)
        return b"".join(parts)
    return np.asarray(values, dtype=_dtype(datatype, "output")).tobytes()


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON header and the binary tail of a request body, given its header-length header."""
    if header_length is None:
        return body, b""
    if not header_length.strip().isdigit() or int(header_length) > len(body):
        raise InvalidInputError(
            f"the {HEADER} header is {header_length!r}, which must be the JSON header's length "
            f"in bytes, at most the body's {len(body)}"
        )
    cut = int(header_length)
    return body[:cut], body[cut:]


def _dtype(datatype: str, name: str) -> np.dtype[Any]:
    code = DATATYPES.get(datatype)
    if code is None:
        raise InvalidInputError(
            f"tensor {name!r}: datatype {datatype!r} is not an Open Inference Protocol type "
            f"({', '.join(DATATYPES)})"
        )
    return np.dtype(code)


def _split_bytes(raw: bytes, name: str) -> list[bytes]:
    items = []
    offset = 0
    while offset < len(raw):
        if offset + _LENGTH.size > len(raw):
            raise InvalidInputError(
                f"input {name!r}: BYTES data ends inside an element's 4-byte length prefix "
                f"(at byte {offset} of {len(raw)}); prefix each element with its length"
            )
        (size,) = _LENGTH.unpack_from(raw, offset)
        offset += _LENGTH.size
        if offset + size > len(raw):
            raise InvalidInputError(
                f"input {name!r}: a BYTES element says it holds {size} bytes but only "
                f"{len(raw) - offset} remain; prefix each element with its own length"
            )
        items.append(raw[offset : offset + size])
        offset += size
    return items


def decode_text(item: bytes, name: str) -> str:
    """One ``BYTES`` element as text; an error naming input ``name`` if it is not UTF-8."""
    try:
        return item.decode()
    except UnicodeDecodeError:
        raise InvalidInputError(
            f"input {name!r}: a BYTES element is not UTF-8 text ({item[:16]!r}...); Steward "
            "takes text columns as UTF-8"
        ) from None
