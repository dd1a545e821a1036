"""KLL sketches built in bulk from sorted values, as datasketches' own compactions would leave them.

Feeding a KLL sketch value by value costs tens of nanoseconds a value; a profile builder already
holds each bucket's values sorted, so :func:`kll_from_sorted` builds the sketch's levels directly
and hands them to ``datasketches.kll_doubles_sketch.deserialize`` in the library's own format
(the compact format of serial version 1: an 8-byte preamble, ``n``, ``min_k``, the level
offsets, the minimum, the maximum, then the retained items level by level).

The levels are what KLL's compactor leaves: starting from the sorted values (level 0, weight 1),
a level with an odd count keeps its smallest item, and the rest is halved by keeping every other
item from a random offset, moving up a level (weight doubled), until the top level holds at most
``k`` items. One halving of a sorted level of weight ``w`` moves any rank by less than ``w``, so
the ranks the sketch answers are off by less than ``2**H`` for ``H`` halvings, and since the level
below the top held more than ``k`` items, ``2**H <= 2 n / (k + 1)``: the normalized rank error is
below ``2 / (k + 1)``, always, which is under the bound datasketches states for ``k`` at 99%
confidence (``2.296 / k**0.9723``). Lower levels hold at most one item, well under their
capacities, so later updates and merges run as on any sketch of the library.

Example::

    >>> import numpy as np
    >>> values = np.sort(np.random.default_rng(0).normal(size=10_000))
    >>> sketch = kll_from_sorted(values, 200, coins=0b1011)
    >>> sketch.n, abs(sketch.get_rank(values[5_000]) - 0.5) < 2 / 201
    (10000, True)
"""

from __future__ import annotations

import struct
from typing import Any, Final

import datasketches
import numpy as np
import numpy.typing as npt

__all__ = ["kll_from_sorted", "level_capacity"]

FloatArray = npt.NDArray[np.float64]

# datasketches' KLL constants: family id, serial version of the full format, minimum level width.
_FAMILY: Final = 15
_SERIAL_VERSION: Final = 1
_PREAMBLE_INTS: Final = 5
_MIN_WIDTH: Final = 8
_LEVEL_ZERO_SORTED: Final = 1 << 1
_HEADER: Final = struct.Struct("<BBBBHBBQHBB")
_EXTREMES: Final = struct.Struct("<dd")


def level_capacity(k: int, num_levels: int, height: int) -> int:
    """The capacity datasketches gives level ``height`` of a KLL sketch with ``num_levels`` levels
    (``kll_helper::level_capacity``: about ``k * (2/3) ** depth``, at least 8).

    >>> level_capacity(200, 6, 5), level_capacity(200, 6, 0)
    (200, 26)
    """
    depth = num_levels - height - 1
    if depth <= 30:
        width = _capacity_at_depth(k, depth)
    else:
        half = depth // 2
        width = _capacity_at_depth(_capacity_at_depth(k, half), depth - half)
    return max(_MIN_WIDTH, width)


def _capacity_at_depth(k: int, depth: int) -> int:
    # k * (2/3) ** depth rounded half up, in integers as the C++ library computes it.
    return (((k << 1) << depth) // 3**depth + 1) >> 1


def _total_capacity(k: int, num_levels: int) -> int:
    return sum(level_capacity(k, num_levels, height) for height in range(num_levels))


def kll_from_sorted(values: FloatArray, k: int, coins: int) -> Any:
    """A ``datasketches.kll_doubles_sketch`` of ``k`` holding ``values`` (sorted ascending, finite).

    Small inputs (at most ``k`` values) are fed to the sketch as they are; larger ones are
    compacted as the module docstring describes. ``coins`` holds random bits, one per halving
    (the lowest bit first): the offset each halving keeps items from; 62 bits cover any count.
    """
    sketch = datasketches.kll_doubles_sketch(k)
    if values.size <= k:
        if values.size:
            sketch.update(values)
        return sketch
    levels: list[FloatArray] = []
    current = values
    while current.size > k:
        if current.size % 2:
            levels.append(current[:1])  # an odd level keeps its smallest item, as KLL does
            current = current[1:]
        else:
            levels.append(current[:0])
        current = current[coins & 1 :: 2]
        coins >>= 1
    levels.append(current)
    return datasketches.kll_doubles_sketch.deserialize(
        _serialized(levels, k, int(values.size), float(values[0]), float(values[-1]))
    )


def _serialized(levels: list[FloatArray], k: int, n: int, low: float, high: float) -> bytes:
    num_levels = len(levels)
    sizes = np.array([level.size for level in levels], dtype=np.int64)
    # Offsets into the library's item buffer, which fills from the top of its capacity down.
    above = np.cumsum(sizes[::-1])[::-1]
    offsets = (_total_capacity(k, num_levels) - above).astype("<u4")
    header = _HEADER.pack(
        _PREAMBLE_INTS, _SERIAL_VERSION, _FAMILY, _LEVEL_ZERO_SORTED, k, _MIN_WIDTH, 0, n, k,
        num_levels, 0,
    )  # fmt: skip
    items = np.concatenate(levels).astype("<f8", copy=False)
    return b"".join([header, offsets.tobytes(), _EXTREMES.pack(low, high), items.tobytes()])
