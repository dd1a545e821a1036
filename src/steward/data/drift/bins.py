"""Bins of a sorted sample: its quantiles, bin edges at them, and each bin's count and sum.

Exact mode (``steward.data.drift.stats``) and profile mode cut a numeric column at the same values:
:func:`quantile_values` and :func:`quantile_edges` read quantiles off the sample (never
interpolated), :func:`bin_counts` counts a sorted sample in right-closed bins. The ``sorted_*``
functions do the same for an array already known finite and ascending, without the pass that
checks it (the drift compare sorts finite values itself).

Example::

    >>> bin_counts([0.5, 1.0, 1.5, 9.0], quantile_edges([0.5, 1.0, 1.5, 9.0], 2)).tolist()
    [2.0, 2.0]
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from steward.data.drift.ks import sorted_sample
from steward.errors import InvalidInputError

__all__ = [
    "bin_counts",
    "quantile_edges",
    "quantile_values",
    "sorted_bin_counts",
    "sorted_bin_sums",
    "sorted_quantile_edges",
]

FloatArray = npt.NDArray[np.float64]


def quantile_values(sorted_values: npt.ArrayLike, bins: int) -> FloatArray:
    """The sample's quantiles at 0, 1/bins, …, 1: ``bins + 1`` values, ties kept, extremes included.

    Each quantile is a value of the sample: the smallest whose share at or below it reaches k/bins
    (numpy's ``method="inverted_cdf"``), found by integer arithmetic, so the quantiles at k/10 are
    exactly those at 10k/100 and no edge differs from another function's by a rounding.

    >>> quantile_values([1.0, 2.0, 3.0, 4.0, 5.0], 4).tolist()
    [1.0, 2.0, 3.0, 4.0, 5.0]
    """
    ordered = sorted_sample(sorted_values, "sample")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise InvalidInputError(f"bins must be an int >= 1, got {bins!r}; the usual is 10")
    return _quantile_values(ordered, bins)


def _quantile_values(ordered: FloatArray, bins: int) -> FloatArray:
    steps = np.arange(bins + 1, dtype=np.int64)
    index = np.maximum((steps * ordered.size + bins - 1) // bins - 1, 0)
    return np.asarray(ordered[index], dtype=np.float64)


def quantile_edges(sorted_values: npt.ArrayLike, bins: int) -> FloatArray:
    """Inner bin edges at the quantiles 1/bins … (bins-1)/bins of an ascending sample.

    The quantiles are those of :func:`quantile_values` (values of the sample, never interpolated);
    tied quantiles merge their bins rather than leave empty ones, so there may be fewer than
    ``bins - 1`` edges.

    >>> quantile_edges([1.0, 2.0, 3.0, 4.0, 5.0], 4).tolist()
    [2.0, 3.0, 4.0]
    >>> quantile_edges([0.0, 0.0, 0.0, 1.0], 4).tolist()
    [0.0]
    """
    return np.unique(quantile_values(sorted_values, bins)[1:-1])


def sorted_quantile_edges(ordered: FloatArray, bins: int) -> FloatArray:
    """``quantile_edges`` of an array already known finite and ascending (not checked).

    >>> sorted_quantile_edges(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), 4).tolist()
    [2.0, 3.0, 4.0]
    """
    return np.unique(_quantile_values(ordered, bins)[1:-1])


def bin_counts(
    sorted_values: npt.ArrayLike, edges: npt.ArrayLike, *, check: bool = True
) -> FloatArray:
    """Count of an ascending sample in each bin of the inner ``edges``: len(edges) + 1 counts.

    Bins are right-closed, (edges[i-1], edges[i]], and open-ended at both extremes, so every value
    falls in one. ``check=False`` skips checking that the sample is finite and ascending (a pass
    over it), for a caller that sorted finite values itself.

    >>> bin_counts([0.5, 1.0, 1.5, 9.0], [1.0, 2.0]).tolist()
    [2.0, 1.0, 1.0]
    """
    if not check:
        return sorted_bin_counts(
            np.asarray(sorted_values, dtype=np.float64), _validated_edges(edges)
        )
    return sorted_bin_counts(sorted_sample(sorted_values, "sample"), _validated_edges(edges))


def _validated_edges(edges: npt.ArrayLike) -> FloatArray:
    array = np.asarray(edges, dtype=np.float64)
    if array.ndim != 1 or not np.all(np.isfinite(array)) or np.any(np.diff(array) <= 0):
        raise InvalidInputError(
            f"bin edges must be a 1-D array of finite, strictly increasing numbers, got "
            f"{array.tolist()[:10]}; pass e.g. quantile_edges(values, 10)"
        )
    return array


def sorted_bin_counts(sorted_values: FloatArray, edges: FloatArray) -> FloatArray:
    """``bin_counts`` of a finite ascending array and valid edges, neither checked.

    >>> sorted_bin_counts(np.array([0.5, 1.0, 1.5, 9.0]), np.array([1.0])).tolist()
    [2.0, 2.0]
    """
    return np.diff(_bin_bounds(sorted_values, edges)).astype(np.float64)


def _bin_bounds(sorted_values: FloatArray, edges: FloatArray) -> npt.NDArray[np.intp]:
    inner = np.searchsorted(sorted_values, edges, side="right")
    return np.concatenate([[0], inner, [sorted_values.size]])


def sorted_bin_sums(sorted_values: FloatArray, edges: FloatArray, power: int = 1) -> FloatArray:
    """The sum of each bin's values (``power=2``: of their squares) in a finite ascending array.

    >>> sorted_bin_sums(np.array([0.5, 1.0, 1.5, 9.0]), np.array([1.0]), power=2).tolist()
    [1.25, 83.25]
    """
    bounds = _bin_bounds(sorted_values, edges)
    sums = np.zeros(bounds.size - 1, dtype=np.float64)
    used = bounds[:-1] < bounds[1:]
    if power == 1 and not used[-1]:
        # Empty bins have no width, so each used bin runs to the next used one's start.
        sums[used] = np.add.reduceat(sorted_values, bounds[:-1][used])
    elif power == 1:
        # The last bin reaches the end; the appended 0 keeps its pairwise sum as it always was.
        sums[used] = np.add.reduceat(np.append(sorted_values, 0.0), bounds[:-1][used])
    else:
        # Bin by bin, so that no power of the whole sample is held at once. Each sum is taken as
        # reduceat takes it, bit for bit: the first value plus the pairwise sum of the rest (with
        # the same appended 0 after the last bin).
        for index in np.flatnonzero(used):
            segment = sorted_values[bounds[index] : bounds[index + 1]] ** power
            if index == sums.size - 1:
                segment = np.append(segment, 0.0)
            sums[index] = segment[0] + np.add.reduce(segment[1:])
    return sums
