"""Each group's finite values in ascending order, by sorting short rows instead of whole groups.

Sorting a time bucket of a few thousand values costs numpy about 25 ns a value on the benchmark
machine (an AMD EPYC with AVX-512, where the compress-stores of numpy's vectorized partitioning
are slow), but rows of at most 256 values sort by a sorting network at under 2 ns a value. The profile builder
already knows each value's bin, and bins are value ranges in order, so a group's values fall into
*cells*, one per bin, of a few dozen values each, every cell's values below the next cell's.

:func:`sort_groups` lays each group's values out by bin (a stable ``argsort`` of the one-byte bin
codes, a radix pass), so every cell holds its own values, unsorted. Then it sorts the layout in
rows of :data:`ROW` values, in rows starting at the group's start and in rows shifted by half a
row, in turn. Sorting a row never moves a value out of its cell, since the cells in a row are in
order; and these passes are an odd-even transposition sort of half-rows, so a cell spanning ``h``
half-rows is sorted after ``h`` passes (two for cells of up to half a row, the common case). A
cell too long for the passes is split again between its extremes and sorted the same way.
Groups of at most :data:`ROW` rows skip all this: each takes one row, and they are sorted at once.

Each group's sorted values are one contiguous run of :class:`SortedGroups`'s buffer, followed by
``+inf`` padding up to a whole number of rows.

Example::

    >>> import numpy as np
    >>> values = np.array([5.0, 1.0, 4.0, 2.0, 3.0, 0.5])
    >>> bins = np.array([1, 0, 1, 0, 1, 0], dtype=np.uint8)  # edge at 2.5
    >>> cells = np.array([[2, 1], [1, 2]])  # group 0: rows 0-2, group 1: rows 3-5
    >>> ordered = sort_groups(values, bins, np.array([0, 3, 6]), cells)
    >>> ordered.group(0).tolist(), ordered.group(1).tolist()
    ([1.0, 4.0, 5.0], [0.5, 2.0, 3.0])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["ROW", "SortedGroups", "sort_groups"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Values per row: numpy sorts rows up to this long with a sorting network.
ROW: Final = 256
_HALF: Final = ROW // 2
# A long cell is split into this many cells of equal width (one-byte keys), at most this deep.
_SPLIT: Final = 256
_MAX_DEPTH: Final = 3
# At most this many row passes per group; the costs that choose how many, in nanoseconds: one
# pass over one value, splitting one cell (Python's share), splitting it per value.
_MAX_PASSES: Final = 8
_PASS_COST: Final = 1.7
_SPLIT_COST: Final = 20_000.0
_SPLIT_VALUE_COST: Final = 15.0


@dataclass(frozen=True)
class SortedGroups:
    """Each group's finite values in ascending order: group ``g``'s are
    ``buffer[firsts[g] : firsts[g] + counts[g]]``."""

    buffer: FloatArray
    firsts: IntArray
    counts: IntArray

    def group(self, group: int) -> FloatArray:
        """Group ``group``'s finite values, sorted (a view into ``buffer``)."""
        first = int(self.firsts[group])
        return self.buffer[first : first + int(self.counts[group])]


def sort_groups(
    values: FloatArray, bins: npt.NDArray[np.unsignedinteger], row_starts: IntArray, cells: IntArray
) -> SortedGroups:
    """Sort each group's finite values. Group ``g`` is ``values[row_starts[g]:row_starts[g + 1]]``;
    ``bins`` holds each row's bin, as an unsigned integer that orders the rows as the values do
    (missing and infinite values after the last bin, so that they come last); ``cells[g, b]`` counts
    group ``g``'s finite values in bin ``b``.

    Groups of at most ``ROW`` rows take one row each, at the start of the buffer, and are sorted
    all at once; larger groups are laid out by bin one by one."""
    counts = cells.sum(axis=1)
    sizes = np.diff(row_starts)
    small = sizes <= ROW
    spans = np.where(small, ROW, _whole_rows(counts)) * (counts > 0)
    # Small groups' rows first, in group order, then the large groups' runs.
    firsts = np.empty(counts.size, dtype=np.int64)
    firsts[small] = np.cumsum(spans[small]) - spans[small]
    firsts[~small] = spans[small].sum() + np.cumsum(spans[~small]) - spans[~small]
    buffer = np.empty(int(spans.sum()), dtype=np.float64)
    _sort_small(values, row_starts, small & (counts > 0), firsts, buffer)
    large = np.flatnonzero(~small & (counts > 0))
    passes, left = _plan_passes(cells[large])
    scratch = np.empty(int(sizes[large].max(initial=0)), dtype=np.float64)
    for group, turns in zip(large.tolist(), passes.tolist(), strict=True):
        low, high = int(row_starts[group]), int(row_starts[group + 1])
        # A sequential copy brings the group's values into cache for the random reads.
        rows = scratch[: high - low]
        np.copyto(rows, values[low:high])
        _lay_out(rows, bins[low:high], buffer[firsts[group] :], int(counts[group]), turns)
    long = np.argwhere(left)
    if long.size:
        long[:, 0] = large[long[:, 0]]
        starts = firsts[:, None] + np.cumsum(cells, axis=1) - cells
        for group, cell in long.tolist():
            start = int(starts[group, cell])
            _sort_cell(buffer[start : start + int(cells[group, cell])], 1)
    return SortedGroups(buffer, firsts, counts)


def _sort_small(
    values: FloatArray,
    row_starts: IntArray,
    chosen: npt.NDArray[np.bool_],
    firsts: IntArray,
    buffer: FloatArray,
) -> None:
    """Sort the ``chosen`` groups, of at most a row each: each group's values go to its own row,
    missing and infinite ones as ``+inf``, and the rows are sorted at once."""
    groups = np.flatnonzero(chosen)
    if not groups.size:
        return
    lows, sizes = row_starts[groups], row_starts[groups + 1] - row_starts[groups]
    total = int(sizes.sum())
    shift = np.repeat(lows - (np.cumsum(sizes) - sizes), sizes)
    rows = shift + np.arange(total)  # the chosen groups' rows, one after another
    taken = values[rows]
    block = buffer[: groups.size * ROW]
    block[:] = np.inf
    block[rows - np.repeat(lows - firsts[groups], sizes)] = np.where(
        np.isfinite(taken), taken, np.inf
    )
    block.reshape(-1, ROW).sort(axis=1)


def _whole_rows(counts: IntArray) -> IntArray:
    return -(-counts // ROW) * ROW


def _lay_out(
    values: FloatArray,
    keys: npt.NDArray[np.unsignedinteger],
    out: FloatArray,
    count: int,
    passes: int = 2,
) -> None:
    """Lay the ``count`` values of the lowest keys out by key at the start of ``out`` (padded with
    ``+inf`` to whole rows), then run ``passes`` row passes over them, in rows and in rows shifted
    by half a row in turn.

    A stable argsort of one-byte keys is a radix pass; values of the keys past the cells (missing
    and infinite values) sort last and are cut off."""
    span = -(-count // ROW) * ROW
    out = out[:span]
    order = np.argsort(keys, kind="stable")[:count]
    np.take(values, order, out=out[:count], mode="clip")  # "clip": no copy; order is in range
    out[count:] = np.inf
    for turn in range(passes if span > ROW else min(passes, 1)):
        rows = out if turn % 2 == 0 else out[_HALF:-_HALF]
        rows.reshape(-1, ROW).sort(axis=1)


def _plan_passes(cells: IntArray) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Per group (a row of ``cells``), how many row passes to run, and which cells are left to
    :func:`_sort_cell`.

    Row passes in turn, in rows and in rows shifted by half a row, are an odd-even transposition
    sort of half-rows by merge-splitting (Baudet and Stevenson, 1978): a cell whose values span
    ``h`` half-rows is sorted after ``h`` passes. Each pass costs the whole group, splitting a
    cell costs that cell alone, plus a fixed cost; the cheaper mix is taken."""
    ends = np.cumsum(cells, axis=1)
    starts = ends - cells
    halves = np.where(cells > 1, (ends - 1) // _HALF - starts // _HALF + 1, 0)
    spans = _whole_rows(ends[:, -1]) if cells.shape[1] else np.zeros(0, dtype=np.int64)
    halves = np.where((spans <= ROW)[:, None], np.minimum(halves, 1), halves)
    split = np.where(cells > 1, _SPLIT_COST + _SPLIT_VALUE_COST * cells, 0.0)
    costs = [
        turns * _PASS_COST * spans + (split * (halves > turns)).sum(axis=1)
        for turns in range(_MAX_PASSES + 1)
    ]
    passes = np.argmin(np.array(costs), axis=0)
    return passes, halves > passes[:, None]


def _sort_cell(values: FloatArray, depth: int) -> None:
    """Sort a long cell in place: split it again into ``_SPLIT`` cells of equal width between its
    extremes, and sort those as :func:`sort_groups` sorts a group. The row passes leave such a
    cell unsorted, but they keep its values within its own stretch of the buffer.

    A cell that splits badly (most values in one part, or a range that overflows) or is split
    too deep is sorted by numpy."""
    low, high = float(values.min()), float(values.max())
    if low == high:
        return
    with np.errstate(over="ignore", divide="ignore"):
        scale = _SPLIT / (high - low)
    keys = np.empty(values.size, dtype=np.uint8)
    if depth <= _MAX_DEPTH and math.isfinite(scale) and math.isfinite(high - low):
        scaled = (values - low) * scale
        np.copyto(keys, np.minimum(scaled, _SPLIT - 1), casting="unsafe")
        cells = np.bincount(keys, minlength=_SPLIT)
        if cells.max() <= values.size // 2:
            laid = np.empty(-(-values.size // ROW) * ROW, dtype=np.float64)
            passes, left = _plan_passes(cells[None, :])
            _lay_out(values.copy(), keys, laid, values.size, int(passes[0]))
            starts = np.cumsum(cells) - cells
            for cell in np.flatnonzero(left[0]).tolist():
                _sort_cell(laid[starts[cell] : starts[cell] + cells[cell]], depth + 1)
            values[...] = laid[: values.size]
            return
    values.sort()
