"""Counting: the column-wise passes that build profiles, many time buckets of one column at once.

:func:`numeric_fields` and :func:`categorical_fields` return, per group of rows, the fields of a
``ColumnProfile``; ``steward.data.profiles.column.profile_groups`` turns them into profiles. Each
field is one vectorized numpy pass over the column, so the cost grows with the rows, not with the
groups; only the sketches loop over groups. Where the time went, and why numpy rather than DuckDB
or Polars, is in ``docs/benchmarks.md`` (profile building).

- Bins: :class:`EdgeIndex` finds each value's bin as ``numpy.searchsorted(edges, values,
  side="left")`` does, bit for bit, in a few streaming passes: a lookup table over a grid of
  equal cells gives the bin of each cell's first value, and comparisons with the edges that fall
  inside the cell finish the search. A fitted binning's lowest edge sits one ulp below the next,
  so it is compared apart, and the grid covers the others. Bin counts and bin sums are then
  ``numpy.bincount`` over ``group * bins + bin``, in row order, as before.
- Moments: sums per group with ``numpy.add.reduceat`` (pairwise summation, as ``numpy.mean``).
- KLL sketches: each group's finite values are sorted by the cells of their bins
  (``steward.data.profiles.cells``), which also gives the minimum and maximum; the sketch's levels
  are the values at ranks ``steward.data.profiles.kll.compactions`` names, fetched for all groups
  at once and handed to the library in bulk.
- Categories: ``pyarrow.compute.index_in`` against the binning's categories (one hash lookup per
  row, in a table of at most ``max_categories`` values); only unseen values are
  dictionary-encoded, for their frequent-items sketch.

Example::

    >>> import numpy as np
    >>> edges = np.array([0.0, 1.0, 2.5, 7.0])
    >>> values = np.array([-3.0, 0.0, 0.5, 2.5, 9.0])
    >>> EdgeIndex(edges).locate(values).tolist() == np.searchsorted(edges, values).tolist()
    True
"""

from __future__ import annotations

import itertools
import weakref
from typing import Any, Final

import datasketches
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from steward.data.profiles.binning import Binning, float_values
from steward.data.profiles.cells import SortedGroups, sort_groups
from steward.data.profiles.kll import compactions, kll_from_items

__all__ = [
    "UNSEEN_FED_PER_BUCKET",
    "EdgeIndex",
    "categorical_fields",
    "new_sketch",
    "numeric_fields",
    "read_numbers",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# The frequent-items sketch of unseen categories tracks up to 0.75 * 2**7 = 96 values.
_UNSEEN_SKETCH_LG_SIZE: Final = 7
#: Feeding every distinct unseen value would cost a Python call per value for an id-like column;
#: the most frequent ones per bucket are what a reader wants to see.
UNSEEN_FED_PER_BUCKET: Final = 256

# Cells of an EdgeIndex grid per edge, and their bounds: enough that most cells hold at most one
# edge, few enough that the lookup table stays in the processor's cache.
_CELLS_PER_EDGE: Final = 64
_MIN_CELLS: Final = 1_024
_MAX_CELLS: Final = 1 << 16
# Comparisons every value gets after the table lookup: cells holding up to this many edges are
# finished by them; values in cells holding more are searched again by numpy.
_STEPS: Final = 2
_SIGN_BIT: Final = np.int64(0x7FFF_FFFF_FFFF_FFFF)
# Rows per chunk of the per-row passes: their buffers stay in the processor's cache.
_CHUNK: Final = 1 << 14
# Rows per span of whole groups whose bins are counted together (see _bin_tables).
_SPAN: Final = 1 << 15


def new_sketch(binning: Binning) -> Any:
    """An empty sketch for a profile of ``binning``: KLL for numeric, frequent items otherwise."""
    if binning.kind_ == "numeric":
        return datasketches.kll_doubles_sketch(binning.sketch_k)
    return datasketches.frequent_strings_sketch(_UNSEEN_SKETCH_LG_SIZE)


class EdgeIndex:
    """``numpy.searchsorted(edges, values, side="left")`` for finite values, by table lookup.

    The grid's cells are equal steps either of the value (a *linear* grid) or of the value's
    IEEE-754 bits read as an ordered integer (a *bits* grid, whose cells grow with the magnitude,
    for skewed columns); the one that leaves fewer edges sharing a cell with two others is kept.
    Both maps from value to cell never decrease, so an edge in a lower cell is below the value and
    an edge in a higher cell above it: the table's count of edges in lower cells is where the
    search starts, and comparing with the next edges of the value's own cell ends it. The result
    equals numpy's exactly, for any finite values and edges. Values are taken in chunks that stay
    in the processor's cache through every pass.

    >>> index = EdgeIndex(np.array([1.0, 10.0, 100.0]))
    >>> index.locate(np.array([0.5, 1.0, 50.0, 1e9])).tolist()
    [0, 0, 2, 3]
    """

    def __init__(self, edges: FloatArray, *, split: bool = True) -> None:
        self.edges = np.ascontiguousarray(edges, dtype=np.float64)
        self._rest: EdgeIndex | None = None
        self._padded = np.append(self.edges, np.inf)
        self._grid: tuple[str, float, float, int] | None = None
        self._steps = 0
        self._crowded: npt.NDArray[np.bool_] | None = None
        best: tuple[int, tuple[str, float, float, int], IntArray, IntArray] | None = None
        for grid in (self._linear_grid(), self._bits_grid()) if self.edges.size > 1 else ():
            if grid is None:
                continue
            self._grid = grid
            first, span = self._table()
            crowded = int(span[span > _STEPS].sum())
            if best is None or crowded < best[0]:
                best = (crowded, grid, first, span)
        if best is None:
            self._grid = None
            return
        _, self._grid, first, span = best
        self._first = first.astype(np.intp)
        self._steps = int(min(_STEPS, span.max()))
        self._crowded = span > _STEPS if span.max() > _STEPS else None
        # A fitted binning puts an edge one ulp below its lowest quantile: those two share a cell
        # of any grid, and every value would pay a second comparison for them. An index of the
        # other edges and one comparison with the lowest edge cost less.
        if split and self._steps == _STEPS and self._crowded is None and self.edges.size > 2:
            rest = EdgeIndex(self.edges[1:], split=False)
            if rest._steps < _STEPS and rest._crowded is None:
                self._rest = rest

    def locate(self, values: FloatArray) -> IntArray:
        """Each finite value's bin: the number of edges strictly below it."""
        found = np.empty(values.shape, dtype=np.intp)
        scratch = _Scratch(min(values.size, _CHUNK))
        for low in range(0, values.size, _CHUNK):
            part = values[low : low + _CHUNK]
            self.locate_into(part, found[low : low + _CHUNK], scratch.sized(part.size))
        return found

    def locate_into(self, values: FloatArray, found: IntArray, scratch: _Scratch) -> None:
        """:meth:`locate` for one chunk, written into ``found``, using ``scratch``'s buffers."""
        if self._rest is not None:
            self._rest.locate_into(values, found, scratch)
            np.less(self.edges[0], values, out=scratch.flags)
            np.add(found, scratch.flags, out=found)
            return
        if self._grid is None:
            found[...] = np.searchsorted(self.edges, values, side="left")
            return
        cells = scratch.cells
        self._cells_into(values, cells, scratch)
        np.take(self._first, cells, out=found)
        for _ in range(self._steps):
            np.take(self._padded, found, out=scratch.floats)
            np.less(scratch.floats, values, out=scratch.flags)
            np.add(found, scratch.flags, out=found)
        if self._crowded is not None:
            rows = np.flatnonzero(np.take(self._crowded, cells))
            if rows.size:
                found[rows] = np.searchsorted(self.edges, values[rows], side="left")

    def _table(self) -> tuple[IntArray, IntArray]:
        """Per cell: the edges in lower cells, and the edges in the cell."""
        assert self._grid is not None
        edge_cells = np.empty(self.edges.size, dtype=np.intp)
        self._cells_into(self.edges, edge_cells, _Scratch(self.edges.size))
        cells = np.arange(self._grid[3])
        first = np.searchsorted(edge_cells, cells, side="left")
        return first, np.searchsorted(edge_cells, cells, side="right") - first

    def _linear_grid(self) -> tuple[str, float, float, int] | None:
        low, high = float(self.edges[0]), float(self.edges[-1])
        cells = int(np.clip(_CELLS_PER_EDGE * self.edges.size, _MIN_CELLS, _MAX_CELLS))
        with np.errstate(over="ignore", divide="ignore"):
            step = np.float64(cells) / (np.float64(high) - np.float64(low))
        # A span too wide (it overflows) or too narrow (a few ulps: the step overflows) is left to
        # the bits grid.
        if not np.isfinite(step) or step <= 0:
            return None
        return ("linear", low, float(step), cells)

    def _bits_grid(self) -> tuple[str, float, float, int] | None:
        low, high = (int(key) for key in _ordered_bits(self.edges[[0, -1]]))
        shift = max(0, (high - low).bit_length() - int(np.log2(_MAX_CELLS)))
        self._keys = (np.int64(low), np.int64(high))
        return ("bits", float(low), float(shift), ((high - low) >> shift) + 1)

    def _cells_into(self, values: FloatArray, cells: IntArray, scratch: _Scratch) -> None:
        assert self._grid is not None
        kind, low, step, n_cells = self._grid
        scaled = scratch.floats
        if kind == "linear":
            # Values far outside the edges overflow to ±inf here, which the clip brings back.
            with np.errstate(over="ignore"):
                np.subtract(values, low, out=scaled)
                np.multiply(scaled, step, out=scaled)
            np.clip(scaled, 0, n_cells - 1, out=scaled)
            np.copyto(cells, scaled, casting="unsafe")
            return
        np.add(values, 0.0, out=scaled)  # -0.0 becomes 0.0, which it equals
        bits = scaled.view(np.int64)
        np.right_shift(bits, 63, out=cells)
        np.bitwise_and(cells, _SIGN_BIT, out=cells)
        np.bitwise_xor(bits, cells, out=cells)
        low_key, high_key = self._keys
        np.clip(cells, low_key, high_key, out=cells)
        np.subtract(cells, low_key, out=cells)  # wraps past 2**63; read back as unsigned
        unsigned = cells.view(np.uint64)
        np.right_shift(unsigned, np.uint64(int(step)), out=unsigned)


def _ordered_bits(values: FloatArray) -> IntArray:
    """The bits of each float as an integer in the floats' order (−0.0 read as 0.0)."""
    bits = np.add(values, 0.0).view(np.int64)
    return np.bitwise_xor(bits, np.bitwise_and(np.right_shift(bits, 63), _SIGN_BIT))


class _Scratch:
    """Buffers for one chunk of rows, reused from chunk to chunk."""

    def __init__(self, size: int) -> None:
        self.floats = np.empty(size, dtype=np.float64)
        self.cells = np.empty(size, dtype=np.intp)
        self.bins = np.empty(size, dtype=np.intp)
        self.flags = np.empty(size, dtype=np.bool_)

    def sized(self, size: int) -> _Scratch:
        """These buffers, cut to ``size`` rows (for the last, shorter chunk)."""
        if size == self.floats.size:
            return self
        cut = _Scratch(0)
        cut.floats, cut.cells = self.floats[:size], self.cells[:size]
        cut.bins, cut.flags = self.bins[:size], self.flags[:size]
        return cut


_INDEXES: weakref.WeakKeyDictionary[Binning, tuple[str, EdgeIndex]] = weakref.WeakKeyDictionary()


def edge_index(binning: Binning) -> EdgeIndex:
    """The :class:`EdgeIndex` of a numeric binning's edges, built once per fitted binning."""
    cached = _INDEXES.get(binning)
    if cached is None or cached[0] != binning.fingerprint_:
        cached = (binning.fingerprint_, EdgeIndex(binning.edges_))
        _INDEXES[binning] = cached
    return cached[1]


# --- numeric columns -------------------------------------------------------------------------------


def numeric_fields(values: FloatArray, binning: Binning, counts: IntArray) -> dict[str, list[Any]]:
    """Per group, the numeric fields of a profile. Each group's rows are one run of ``values``, in
    group order; ``counts`` holds each group's rows. Missing (NaN) and infinite values are counted
    in two extra bins per group, so one ``bincount`` counts them with the bins."""
    n_bins = binning.n_bins
    finite = np.isfinite(values)
    every = bool(finite.all())
    clean = values if every else np.where(finite, values, 0.0)
    starts = np.concatenate([[0], np.cumsum(counts)])
    table, sums, keys = _bin_tables(values, clean, binning, starts, every)
    n = counts - table[:, n_bins] - table[:, n_bins + 1]
    mean, m2 = _moments(clean, None if every else finite, counts, n, starts)
    ordered = sort_groups(values, keys, starts, table[:, :n_bins])
    sketches, minimum, maximum = _sketches(ordered, n, binning)
    return {
        "null_count": table[:, n_bins].tolist(),
        "infinite_count": table[:, n_bins + 1].tolist(),
        "bin_counts": list(table[:, :n_bins]),
        "bin_sums": list(sums[:, :n_bins]),
        "finite_count": n.tolist(),
        "finite_mean": mean.tolist(),
        "finite_m2": m2.tolist(),
        "minimum": minimum,
        "maximum": maximum,
        "sketch": sketches,
    }


def _bin_tables(
    values: FloatArray, clean: FloatArray, binning: Binning, starts: IntArray, every: bool
) -> tuple[IntArray, FloatArray, npt.NDArray[np.unsignedinteger]]:
    """Per group and bin (bin ``bins`` for NaN, ``bins + 1`` for ±inf): the rows, and the sum of
    their offsets from the bin's anchor; and per row its bin, as the smallest unsigned integer
    that holds it (the key :func:`sort_groups` groups by).

    The rows are taken in spans of whole groups (``starts``: each group's first row), so that a
    span's arrays stay in cache; its ``bincount`` adds each bin's offsets in row order from 0,
    exactly as one ``bincount`` over the whole column would."""
    n_bins = binning.n_bins
    width = n_bins + 2
    n_groups = starts.size - 1
    table = np.zeros((n_groups, width), dtype=np.int64)
    sums = np.zeros((n_groups, width), dtype=np.float64)
    keys: npt.NDArray[np.unsignedinteger] = (
        np.empty(values.size, dtype=np.uint8)
        if width <= 256
        else np.empty(values.size, dtype=np.uint16)
    )
    # Missing and infinite values are binned as the 0.0 that stands in for them, then moved to
    # their own bins; their offsets land there too, and those bins' sums are dropped.
    special = np.flatnonzero(~np.isfinite(values)) if not every else np.zeros(0, dtype=np.intp)
    kinds = n_bins + np.isinf(values[special])
    cuts = np.flatnonzero(np.diff(starts[:-1] // _SPAN)) + 1
    bounds = np.concatenate([[0], cuts, [n_groups]]).tolist()
    longest = int(np.max(starts[bounds[1:]] - starts[bounds[:-1]], initial=0))
    offsets = np.empty(longest, dtype=np.float64)
    for first, last in itertools.pairwise(bounds):
        low, high = int(starts[first]), int(starts[last])
        _bin_span(clean[low:high], binning, offsets[: high - low], keys[low:high])
        moved = slice(*np.searchsorted(special, [low, high]))
        keys[special[moved]] = kinds[moved]
        codes = np.repeat(np.arange(last - first) * width, np.diff(starts[first : last + 1]))
        codes += keys[low:high]
        size = (last - first) * width
        table[first:last] = np.bincount(codes, minlength=size).reshape(-1, width)
        found = np.bincount(codes, weights=offsets[: high - low], minlength=size)
        sums[first:last] = found.reshape(-1, width)
    return table, sums, keys


def _bin_span(
    clean: FloatArray, binning: Binning, offsets: FloatArray, keys: npt.NDArray[np.unsignedinteger]
) -> None:
    """Each row's bin (into ``keys``) and offset from the bin's anchor (into ``offsets``), chunk by
    chunk so that the passes stay in cache."""
    anchors = binning.anchors
    index = edge_index(binning)
    scratch = _Scratch(min(clean.size, _CHUNK))
    for low in range(0, clean.size, _CHUNK):
        high = min(low + _CHUNK, clean.size)
        part, buffers = clean[low:high], scratch.sized(high - low)
        bins = buffers.bins
        # side="left" puts a value equal to an edge in the bin it closes: bins are (e[i-1], e[i]].
        index.locate_into(part, bins, buffers)
        # Offsets from the bin's anchor are 0 exactly when a value sits on it, so the sum says
        # exactly whether a bin's values all sit on its right edge; they also keep the means free
        # of the cancellation a plain sum of large values would bring.
        np.take(anchors, bins, out=buffers.floats)
        np.subtract(part, buffers.floats, out=offsets[low:high])
        np.copyto(keys[low:high], bins, casting="unsafe")


def _moments(
    clean: FloatArray,
    finite: npt.NDArray[np.bool_] | None,
    counts: IntArray,
    n: IntArray,
    starts: IntArray,
) -> tuple[FloatArray, FloatArray]:
    """Each group's mean and sum of squared deviations of its finite values, by pairwise sums (as
    ``numpy.mean``). ``clean`` holds 0 where a value is not finite (``finite`` False)."""
    mean = np.zeros(counts.size, dtype=np.float64)
    m2 = np.zeros(counts.size, dtype=np.float64)
    rows = np.flatnonzero(counts)
    if not rows.size:
        return mean, m2
    first = starts[rows]
    divisor = np.maximum(n[rows], 1)
    mean[rows] = np.add.reduceat(clean, first) / divisor
    # The deviations' own mean corrects the rounding of the first sum; with it, the sum of squared
    # deviations from the corrected mean is sum(d**2) - n * correction**2.
    deviations = clean - np.repeat(mean, counts)
    if finite is not None:
        np.copyto(deviations, 0.0, where=~finite)
    correction = np.add.reduceat(deviations, first) / divisor
    np.multiply(deviations, deviations, out=deviations)
    squares = np.add.reduceat(deviations, first) - n[rows] * correction**2
    m2[rows] = np.maximum(squares, 0.0)
    mean[rows] += correction
    return mean, m2


def _sketches(
    ordered: SortedGroups, n: IntArray, binning: Binning
) -> tuple[list[Any], list[float | None], list[float | None]]:
    """Each group's KLL sketch, built in bulk from its sorted finite values (``ordered``), and
    their minimum and maximum. Only the values each sketch keeps are fetched, in one gather for
    all groups."""
    k = binning.sketch_k
    coins = np.random.default_rng().integers(0, 1 << 62, size=n.size)
    plans, ranks, kept = compactions(n, k, coins)
    items = ordered.buffer[ranks + np.repeat(ordered.firsts, kept)]
    present = n > 0
    firsts = ordered.firsts[present]
    extremes = np.zeros((2, n.size))
    extremes[0, present] = ordered.buffer[firsts]
    extremes[1, present] = ordered.buffer[firsts + n[present] - 1]
    sketches: list[Any] = []
    minimum: list[float | None] = []
    maximum: list[float | None] = []
    runs = zip(
        plans, n.tolist(), np.cumsum(kept).tolist(), kept.tolist(), *extremes.tolist(), strict=True
    )
    for plan, count, cut, size, least, most in runs:
        taken = items[cut - size : cut]
        minimum.append(least if count else None)
        maximum.append(most if count else None)
        if plan is not None:
            sketches.append(kll_from_items(taken, plan, k, count, least, most))
            continue
        sketches.append(new_sketch(binning))
        if count:
            sketches[-1].update(taken)
    return sketches, minimum, maximum


def read_numbers(array: pa.ChunkedArray, what: str, order: IntArray | None) -> FloatArray:
    """A column as float64 (nulls as NaN), in ``order`` when given."""
    values = float_values(array, what)
    return values if order is None else values[order]


# --- categorical columns ---------------------------------------------------------------------------


def categorical_fields(
    array: pa.ChunkedArray,
    order: IntArray | None,
    binning: Binning,
    groups: IntArray,
    n_groups: int,
) -> dict[str, list[Any]]:
    """Per group, the categorical fields of a profile. Row ``order[i]`` (row ``i`` when ``order``
    is None) belongs to group ``groups[i]``, which is sorted ascending."""
    text = _text(array)
    known = len(binning.categories_)
    codes = _codes(text, binning.categories_)
    if order is not None:
        codes = codes[order]
    table = np.bincount(groups * (known + 2) + codes, minlength=n_groups * (known + 2))
    table = table.reshape(n_groups, known + 2)
    unseen = codes == known
    sketches = [new_sketch(binning) for _ in range(n_groups)]
    if unseen.any():
        _feed_unseen(sketches, text, order, unseen, groups)
    return {
        "null_count": table[:, known + 1].tolist(),
        "unseen_count": table[:, known].tolist(),
        "bin_counts": list(table[:, :known]),
        "unseen_sketch": sketches,
    }


def _text(array: pa.ChunkedArray) -> pa.Array:
    text = array if pa.types.is_string(array.type) else array.cast(pa.string())
    return text.combine_chunks()


def _codes(text: pa.Array, categories: tuple[str, ...]) -> IntArray:
    """Per row: its category's index, ``len(categories)`` when unseen, ``len + 1`` when missing."""
    known = len(categories)
    found = pc.index_in(text, value_set=pa.array(categories, pa.string()))
    codes = np.asarray(found.fill_null(known).to_numpy(), dtype=np.int64)
    if text.null_count:
        codes[text.is_null().to_numpy(zero_copy_only=False)] = known + 1
    return codes


def _feed_unseen(
    sketches: list[Any],
    text: pa.Array,
    order: IntArray | None,
    unseen: npt.NDArray[np.bool_],
    groups: IntArray,
) -> None:
    """Feed each group's most frequent unseen values, with their counts, to its sketch."""
    positions = np.flatnonzero(unseen)
    rows = positions if order is None else order[positions]
    # Distinct values numbered by first appearance in the frame's own row order, so ties in the
    # counts below are broken the same way whatever order the groups were sorted into.
    in_frame_order = rows if order is None else np.sort(rows)
    encoded = pc.dictionary_encode(text.take(pa.array(in_frame_order)))
    distinct = encoded.dictionary
    indices = np.asarray(encoded.indices.to_numpy(), dtype=np.int64)
    if order is not None:
        by_row = np.empty(len(text), dtype=np.int64)
        by_row[in_frame_order] = indices
        indices = by_row[rows]
    pairs, counts = np.unique(groups[positions] * len(distinct) + indices, return_counts=True)
    pair_groups, values = pairs // len(distinct), pairs % len(distinct)
    ranked = np.lexsort((-counts, pair_groups))  # by group, most frequent first
    sorted_groups = pair_groups[ranked]
    rank = np.arange(ranked.size) - np.searchsorted(sorted_groups, sorted_groups)
    chosen = ranked[rank < UNSEEN_FED_PER_BUCKET]
    names = distinct.take(pa.array(values[chosen])).to_pylist()
    for group, name, count in zip(
        pair_groups[chosen].tolist(), names, counts[chosen].tolist(), strict=True
    ):
        sketches[group].update(name, count)
