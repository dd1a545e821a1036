"""The Wasserstein distance in reference standard deviations, and its resampled no-drift null.

``scaled_wasserstein`` scores weighted rows on a support (one call for every resample). The null
of exact mode splits the pooled sample at random: small samples by permuting the pooled values
themselves (``permuted_wasserstein``), larger ones by multinomial draws on a grid of
pooled-quantile bins (``wasserstein_grid``, ``gridded_wasserstein``).

The draws on a grid hang only on the grid's bin shares, the two sample sizes and the number of
resamples, not on the values. Columns of continuous values cut into pooled-quantile bins have the
same shares, so ``GridNulls`` draws once for all of them and each column scores the shared draws on
its own support: one matrix product where it drew a million binomials before. Using the same
resamples for every column is what multivariate permutation tests do (Westfall and Young); each
column's null is drawn exactly as it was, and its p-value stays valid. The draws are seeded by the
run's seed and their own key, so a column's p-value does not depend on which other columns ran,
nor in what order.

Example::

    >>> support = np.array([0.0, 1.0, 2.0])
    >>> scaled_wasserstein(np.array([1.0, 1.0, 0.0]), np.array([0.0, 1.0, 1.0]), support,
    ...                    support * support).round(3).tolist()
    2.0
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from collections import OrderedDict
from concurrent.futures import Future
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from steward.data.drift.bins import sorted_bin_counts, sorted_bin_sums, sorted_quantile_edges

__all__ = [
    "BATCH_CELLS",
    "WASSERSTEIN_GRID_BINS",
    "WASSERSTEIN_TAIL_VALUES",
    "Grid",
    "GridNulls",
    "gridded_wasserstein",
    "permuted_wasserstein",
    "scaled_wasserstein",
    "wasserstein_batch",
    "wasserstein_grid",
]

FloatArray = npt.NDArray[np.float64]

#: The pooled-quantile bins on which the Wasserstein null is drawn above the permutation's limit.
WASSERSTEIN_GRID_BINS = 200
#: ... and the most extreme values on each side, a bin each.
WASSERSTEIN_TAIL_VALUES = 100
#: Resamples are scored in batches of at most this many cells (resamples x rows).
BATCH_CELLS = 2_000_000
#: Shared draws kept at once by ``GridNulls`` (each about 16 bytes x resamples x bins).
_KEPT_DRAWS = 8


def _shares(counts: FloatArray) -> FloatArray:
    return counts / counts.sum(axis=-1, keepdims=True)


def wasserstein_batch(
    reference: FloatArray, current: FloatArray, support: FloatArray
) -> FloatArray:
    """W1 between weighted rows (bins on the last axis), each bin's mass at ``support``."""
    gaps = np.cumsum(_shares(reference), axis=-1) - np.cumsum(_shares(current), axis=-1)
    return np.asarray(np.sum(np.abs(gaps[..., :-1]) * np.diff(support), axis=-1))


def _scaled(distance: FloatArray, mean: FloatArray, mean_square: FloatArray) -> FloatArray:
    deviation = np.sqrt(np.maximum(mean_square - mean * mean, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(distance > 0, distance / deviation, 0.0))


def scaled_wasserstein(
    reference: FloatArray, current: FloatArray, support: FloatArray, second_moment: FloatArray
) -> FloatArray:
    """W1 between weighted rows (bins on the last axis), each mass at ``support``, over the
    reference side's standard deviation (from ``support`` and each bin's ``second_moment``, the
    mean of its values' squares); 0 where the distance is 0, infinite where only the deviation is.

    >>> scaled_wasserstein(np.array([1.0, 1.0]), np.array([0.0, 2.0]), np.array([0.0, 2.0]),
    ...                    np.array([0.0, 4.0])).round(3).tolist()
    1.0
    """
    distance = wasserstein_batch(reference, current, support)
    weights = _shares(reference)
    return _scaled(distance, weights @ support, weights @ second_moment)


def permuted_wasserstein(
    pooled: FloatArray, n_reference: int, rng: np.random.Generator, n_resamples: int
) -> FloatArray:
    """The scaled distance of ``n_resamples`` random splits of the sorted pooled values."""
    labels = np.zeros(pooled.size)
    labels[:n_reference] = 1.0
    batch = max(1, BATCH_CELLS // pooled.size)
    draws = []
    for start in range(0, n_resamples, batch):
        reference = rng.permuted(np.tile(labels, (min(batch, n_resamples - start), 1)), axis=1)
        draws.append(scaled_wasserstein(reference, 1.0 - reference, pooled, pooled * pooled))
    return np.concatenate(draws)


class Grid(NamedTuple):
    """The bins of the gridded Wasserstein null: inner edges, which bins hold pooled values, and
    of those the mean (``support``), the mean square and the pooled share."""

    edges: FloatArray
    used: npt.NDArray[np.bool_]
    support: FloatArray
    second_moment: FloatArray
    shares: FloatArray


def wasserstein_grid(pooled: FloatArray) -> Grid:
    """Pooled-quantile bins, and the ``WASSERSTEIN_TAIL_VALUES`` most extreme values on each side a
    bin each (they move a heavy tail's standard deviation, and the null must move it as much)."""
    tails = np.concatenate([pooled[:WASSERSTEIN_TAIL_VALUES], pooled[-WASSERSTEIN_TAIL_VALUES:]])
    edges = np.union1d(sorted_quantile_edges(pooled, WASSERSTEIN_GRID_BINS), tails)
    counts = sorted_bin_counts(pooled, edges)
    used = counts > 0
    support = sorted_bin_sums(pooled, edges)[used] / counts[used]
    spread = sorted_bin_sums(pooled, edges, power=2)[used] / counts[used] - support * support
    second_moment = support * support + np.maximum(spread, 0.0)
    return Grid(edges, used, support, second_moment, counts[used] / counts.sum())


class _Draws(NamedTuple):
    """Resampled pairs on a grid, kept in the form every column scores: the absolute gaps between
    the two sides' cumulative shares (the last bin's, 0 up to rounding, is weighted 0) and the
    reference side's shares."""

    gaps: FloatArray
    reference_shares: FloatArray

    def scored(self, support: FloatArray, second_moment: FloatArray) -> FloatArray:
        distance = self.gaps @ np.append(np.diff(support), 0.0)
        weights = self.reference_shares
        return _scaled(distance, weights @ support, weights @ second_moment)


def _key(shares: FloatArray, n_reference: int, n_current: int, n_resamples: int) -> bytes:
    digest = hashlib.blake2b(np.ascontiguousarray(shares, dtype=np.float64).tobytes())
    digest.update(np.array([n_reference, n_current, n_resamples], dtype=np.int64).tobytes())
    return digest.digest()


class GridNulls:
    """Multinomial draws on Wasserstein grids, made once per grid and sizes and shared by every
    column (and thread) that asks for the same ones; seeded by ``seed`` and the draws' key.

    >>> shares = np.full(4, 0.25)
    >>> nulls = GridNulls(seed=0)
    >>> a = nulls.draws(shares, 1_000, 1_000, 200)
    >>> a is nulls.draws(shares.copy(), 1_000, 1_000, 200), a.gaps.shape
    (True, (200, 4))
    >>> bool(np.all(GridNulls(seed=0).draws(shares, 1_000, 1_000, 200).gaps == a.gaps))
    True
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._lock = threading.Lock()
        self._kept: OrderedDict[bytes, Future[_Draws]] = OrderedDict()

    def draws(
        self, shares: FloatArray, n_reference: int, n_current: int, n_resamples: int
    ) -> _Draws:
        """The draws for these bin shares and sizes: made by the first caller, waited on by the
        others (the last ``_KEPT_DRAWS`` kinds are kept)."""
        key = _key(shares, n_reference, n_current, n_resamples)
        with self._lock:
            found = self._kept.get(key)
            owner = found is None
            if found is None:
                found = self._kept[key] = Future()
                while len(self._kept) > _KEPT_DRAWS:
                    self._kept.popitem(last=False)
            else:
                self._kept.move_to_end(key)
        if owner:
            try:
                found.set_result(self._draw(shares, n_reference, n_current, n_resamples))
            except BaseException as error:  # re-raised to every caller of these draws
                found.set_exception(error)
                raise
        return found.result()

    def counts(
        self, shares: FloatArray, n_reference: int, n_current: int, n_resamples: int
    ) -> tuple[FloatArray, FloatArray]:
        """The resampled bin counts behind ``draws``: ``n_resamples`` rows a side."""
        rng = np.random.default_rng(
            [self.seed, zlib.crc32(_key(shares, n_reference, n_current, n_resamples))]
        )
        reference = rng.multinomial(n_reference, shares, size=n_resamples).astype(np.float64)
        current = rng.multinomial(n_current, shares, size=n_resamples).astype(np.float64)
        return reference, current

    def _draw(
        self, shares: FloatArray, n_reference: int, n_current: int, n_resamples: int
    ) -> _Draws:
        reference, current = self.counts(shares, n_reference, n_current, n_resamples)
        reference /= n_reference
        current /= n_current
        # In place where it can be: the draws of a 1M-row pair are about 6 MB an array.
        gaps = np.cumsum(reference, axis=-1)
        gaps -= np.cumsum(current, axis=-1)
        del current
        return _Draws(np.abs(gaps, out=gaps), reference)


def gridded_wasserstein(
    grid: Grid,
    reference: FloatArray,
    current: FloatArray,
    nulls: GridNulls,
    n_resamples: int,
) -> tuple[float, FloatArray]:
    """As ``permuted_wasserstein``, with multinomial draws on the bins of ``grid`` (shared through
    ``nulls``). Returns the observed pair's scaled distance on the same bins, and the null."""
    edges, used, support, second_moment, shares = grid
    observed = scaled_wasserstein(
        sorted_bin_counts(reference, edges)[used],
        sorted_bin_counts(current, edges)[used],
        support,
        second_moment,
    )
    drawn = nulls.draws(shares, reference.size, current.size, n_resamples)
    return float(observed), drawn.scored(support, second_moment)
