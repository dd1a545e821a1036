"""The fake's embeddings: bag-of-words vectors by feature hashing, L2-normalised.

Each content word (stop words left out, unless nothing else is left) adds ±1 at a slot chosen by a
blake2b hash of the seed and the word, so texts that share words point the same way and unrelated
texts are nearly orthogonal. Python's own ``hash`` is salted per process, so it is not used.

>>> a, b, c = (embed_text(t, seed=0) for t in ("refund policy", "the refund policy", "blue whale"))
>>> round(cosine(a, b), 6), cosine(a, c) < 0.5
(1.0, True)
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct

from steward.testing.answers import STOP_WORDS

__all__ = ["DEFAULT_DIMENSIONS", "cosine", "embed_text", "encode_base64"]

#: Length of a vector when the request does not ask for ``dimensions``.
DEFAULT_DIMENSIONS = 256

_TOKEN = re.compile(r"[^\W_]+")


def embed_text(text: str, *, seed: int, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """The unit vector of ``text``: signed hashed word counts, divided by their norm."""
    words = [word.lower() for word in _TOKEN.findall(text)]
    words = [word for word in words if word not in STOP_WORDS] or words or [""]
    vector = [0.0] * dimensions
    for word in words:
        digest = hashlib.blake2b(f"{seed}\0{word}".encode(), digest_size=8).digest()
        number = int.from_bytes(digest, "big")
        vector[number % dimensions] += 1.0 if (number >> 63) & 1 else -1.0
    norm = math.sqrt(sum(value * value for value in vector))
    if norm == 0.0:  # colliding words cancelled out: still answer a unit vector
        vector[0] = 1.0
        return vector
    return [value / norm for value in vector]


def cosine(a: list[float], b: list[float]) -> float:
    """The cosine of two vectors (their dot product, when both are unit vectors)."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norms if norms else 0.0


def encode_base64(vector: list[float]) -> str:
    """``vector`` as little-endian float32 bytes in base64, as ``encoding_format: base64`` asks."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
