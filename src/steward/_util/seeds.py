"""Reproducible random draws: the seed a setting stands for, and generators keyed by a name.

Example::

    >>> bool(keyed_rng(0, "amount").random() == keyed_rng(0, "amount").random())
    True
"""

from __future__ import annotations

import zlib

import numpy as np

from steward.errors import InvalidInputError

__all__ = ["keyed_rng", "resolve_seed"]


def resolve_seed(random_state: int | None) -> int:
    """The seed a ``random_state`` setting stands for: itself, or a fresh one for None.

    >>> resolve_seed(7)
    7
    """
    if random_state is None:
        return int(np.random.default_rng().integers(2**63 - 1))
    if isinstance(random_state, bool) or not isinstance(random_state, int | np.integer):
        raise InvalidInputError(
            f"random_state must be an int or None, got {random_state!r}; pass e.g. random_state=0"
        )
    if random_state < 0:
        raise InvalidInputError(f"random_state must be >= 0, got {random_state}; pass e.g. 0")
    return int(random_state)


def keyed_rng(seed: int, key: str) -> np.random.Generator:
    """A generator seeded by ``seed`` and a name, such as a column's.

    Keyed by the name, a column's draws do not change when other columns come or go.

    >>> bool(keyed_rng(0, "amount").random() == keyed_rng(0, "amount").random())
    True
    """
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
