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

Which values a sketch keeps follows from ``n`` and the random bits alone: :func:`compactions`
names their ranks for many runs at once, so a caller whose sorted values sit elsewhere (a profile
builder's padded buffer) fetches just those, and :func:`kll_from_items` builds each sketch.

Example::

    >>> import numpy as np
    >>> values = np.sort(np.random.default_rng(0).normal(size=10_000))
    >>> sketch = kll_from_sorted(values, 200, coins=0b1011)
    >>> sketch.n, abs(sketch.get_rank(values[5_000]) - 0.5) < 2 / 201
    (10000, True)
"""

from __future__ import annotations

import functools
import struct
from typing import Any, Final

import datasketches
import numpy as np
import numpy.typing as npt

__all__ = ["compactions", "kll_from_items", "kll_from_sorted", "level_capacity"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

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


@functools.lru_cache(maxsize=256)
def _total_capacity(k: int, num_levels: int) -> int:
    return sum(level_capacity(k, num_levels, height) for height in range(num_levels))


def kll_from_sorted(values: FloatArray, k: int, coins: int) -> Any:
    """A ``datasketches.kll_doubles_sketch`` of ``k`` holding ``values`` (sorted ascending, finite).

    Small inputs (at most ``k`` values) are fed to the sketch as they are; larger ones are
    compacted as the module docstring describes. ``coins`` holds random bits, one per halving
    (the lowest bit first): the offset each halving keeps items from; 62 bits cover any count.
    """
    n = int(values.size)
    plans, ranks, _ = compactions(np.array([n]), k, np.array([coins]))
    items = values[ranks]
    if plans[0] is None:
        sketch = datasketches.kll_doubles_sketch(k)
        if n:
            sketch.update(items)
        return sketch
    return kll_from_items(items, plans[0], k, n, float(values[0]), float(values[-1]))


def compactions(
    counts: IntArray, k: int, coins: IntArray
) -> tuple[list[list[int] | None], IntArray, IntArray]:
    """What sketches of ``k`` built from sorted runs of ``counts[i]`` values keep, as
    :func:`kll_from_sorted` compacts them (``coins[i]``: the run's random bits, below 2**62).

    Returns, per run, the item count of each level (level 0 first), or None for a run of at most
    ``k`` values, which is fed to a sketch whole; the ranks (from 0, within its run) of the
    values each run keeps, level by level, run after run; and how many each run keeps. A caller
    holding sorted values scattered elsewhere fetches just these ranks and passes each run's to
    :func:`kll_from_items`.

    >>> plans, ranks, kept = compactions(np.array([10, 3]), 4, np.array([0b01, 0]))
    >>> plans, ranks.tolist(), kept.tolist()
    ([[0, 1, 2], None], [1, 3, 7, 0, 1, 2], [3, 3])
    """
    counts = np.asarray(counts, dtype=np.int64)
    coins = np.asarray(coins, dtype=np.int64)
    # Each run's top level is values[offset :: stride][:count]; lower levels keep one value each
    # at most (``singles``, where ``kept``).
    offset, stride, count = np.zeros_like(counts), np.ones_like(counts), counts.copy()
    height = np.zeros_like(counts)  # halvings so far
    singles: list[IntArray] = []
    kept: list[npt.NDArray[np.bool_]] = []
    active = count > k
    while active.any():
        height += active
        odd = active & (count % 2 == 1)  # an odd level keeps its smallest item, as KLL does
        singles.append(offset.copy())
        kept.append(odd)
        offset += stride * odd
        count -= odd
        offset += np.where(active, stride * (coins & 1), 0)
        stride = np.where(active, stride * 2, stride)
        count = np.where(active, count // 2, count)
        coins = coins >> 1
        active = count > k
    ranks, per_run = _ranks(singles, kept, offset, stride, count)
    return _plans(counts > k, kept, height, count), ranks, per_run


def _plans(
    compacted: npt.NDArray[np.bool_],
    kept: list[npt.NDArray[np.bool_]],
    height: IntArray,
    count: IntArray,
) -> list[list[int] | None]:
    """Each compacted run's level sizes: one or none per halving, then its top level."""
    levels = np.column_stack(kept).astype(np.int64).tolist() if kept else [[]] * count.size
    return [
        [*level_sizes[:halvings], top] if is_compacted else None
        for level_sizes, halvings, top, is_compacted in zip(
            levels, height.tolist(), count.tolist(), compacted.tolist(), strict=True
        )
    ]


def _ranks(
    singles: list[IntArray],
    kept: list[npt.NDArray[np.bool_]],
    offset: IntArray,
    stride: IntArray,
    count: IntArray,
) -> tuple[IntArray, IntArray]:
    """Each run's kept ranks (its lower levels' single items, then its top level), and how many."""
    n_runs = count.size
    lows = np.column_stack(singles) if singles else np.zeros((n_runs, 0), dtype=np.int64)
    mask = np.column_stack(kept) if kept else np.zeros((n_runs, 0), dtype=bool)
    per_run = mask.sum(axis=1) + count
    ends = np.cumsum(per_run)
    ranks = np.empty(int(ends[-1]) if n_runs else 0, dtype=np.int64)
    starts = ends - per_run
    # Single items first, in level order: row-major order of the mask is run, then level.
    within = np.cumsum(mask, axis=1) - 1
    ranks[(starts[:, None] + within)[mask]] = lows[mask]
    # Then the top level: offset + stride * i for i < count.
    first_top = starts + mask.sum(axis=1)
    step = np.repeat(stride, count)
    index = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    ranks[np.repeat(first_top, count) + index] = np.repeat(offset, count) + step * index
    return ranks, per_run


def kll_from_items(
    items: FloatArray, sizes: list[int], k: int, n: int, low: float, high: float
) -> Any:
    """The sketch of ``k`` over ``n`` values from ``low`` to ``high`` whose levels hold ``items``,
    ``sizes[h]`` of them at level ``h`` (as :func:`compactions` gives them)."""
    return datasketches.kll_doubles_sketch.deserialize(_serialized(items, sizes, k, n, low, high))


def _serialized(
    items: FloatArray, sizes: list[int], k: int, n: int, low: float, high: float
) -> bytes:
    num_levels = len(sizes)
    # Offsets into the library's item buffer, which fills from the top of its capacity down.
    offsets = []
    above = _total_capacity(k, num_levels) - sum(sizes)
    for size in sizes:
        offsets.append(above)
        above += size
    header = _HEADER.pack(
        _PREAMBLE_INTS, _SERIAL_VERSION, _FAMILY, _LEVEL_ZERO_SORTED, k, _MIN_WIDTH, 0, n, k,
        num_levels, 0,
    )  # fmt: skip
    return b"".join(
        [
            header,
            struct.pack(f"<{num_levels}I", *offsets),
            _EXTREMES.pack(low, high),
            items.astype("<f8", copy=False).tobytes(),
        ]
    )
