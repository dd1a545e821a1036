"""The two-sample Kolmogorov–Smirnov test on sorted samples, equal to ``scipy.stats.ks_2samp``.

``ks_from_sorted`` tests two ascending arrays; its pieces (``ecdf_gaps``, ``ks_statistic``,
``ks_p_value``) let a caller that already merged the two samples (``steward.data.drift.stats``
reuses the merge for the Wasserstein distance) compute the test without sorting again;
``merge_sorted`` gives the merge and the statistic in one pass. The merge runs block by block on
slices that fit in a core's cache, so its memory is the two output arrays and little more.
``ks_noise`` is the statistic's no-drift quantile that a report adds to the floor. For large
samples, where scipy's Kolmogorov distribution would sum a million terms in a scalar loop, the same
series is summed with numpy.

Example::

    >>> ks_from_sorted([1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 5.0, 6.0]).statistic
    0.5
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special, stats

from steward.errors import InvalidInputError

__all__ = [
    "NOISE_QUANTILE",
    "KSResult",
    "ecdf_gaps",
    "ks_from_sorted",
    "ks_noise",
    "ks_p_value",
    "ks_statistic",
    "merge_sorted",
    "merge_sorted_area",
    "sorted_sample",
]

FloatArray = npt.NDArray[np.float64]

#: The quantile of a statistic's no-drift distribution taken as its noise at given sample sizes.
NOISE_QUANTILE = 0.999

_KS_EXACT_MAX_N = 10_000  # where scipy.stats.ks_2samp's 'auto' mode leaves the exact distribution
#: Values of each side merged at a time (blocks of a few hundred kB stay in a core's cache).
_MERGE_BLOCK = 1 << 15


@dataclass(frozen=True)
class KSResult:
    """Two-sample Kolmogorov–Smirnov test: the largest gap between the two ECDFs, and its p-value."""

    statistic: float
    p_value: float


def ks_from_sorted(reference_sorted: npt.ArrayLike, current_sorted: npt.ArrayLike) -> KSResult:
    """Two-sample Kolmogorov–Smirnov test on two ascending arrays, equal to ``scipy.stats.ks_2samp``.

    >>> result = ks_from_sorted([1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 5.0, 6.0])
    >>> result.statistic, round(result.p_value, 4)
    (0.5, 0.7714)
    """
    reference = sorted_sample(reference_sorted, "reference sample")
    current = sorted_sample(current_sorted, "current sample")
    merged, gaps = ecdf_gaps(reference, current)
    statistic = ks_statistic(merged, gaps)
    return KSResult(statistic=statistic, p_value=ks_p_value(statistic, reference, current))


def sorted_sample(values: npt.ArrayLike, what: str) -> FloatArray:
    """``values`` as a float array, refused unless 1-D, non-empty, finite and ascending."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        raise InvalidInputError(
            f"the {what} must be a non-empty 1-D array of finite numbers, got shape "
            f"{array.shape}; drop missing values first"
        )
    if np.any(array[1:] < array[:-1]):
        raise InvalidInputError(f"the {what} is not sorted; pass np.sort(values)")
    return array


def ecdf_gaps(reference: FloatArray, current: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The pooled sorted values, and F_reference − F_current counted up to each of them."""
    merged, gaps, _ = merge_sorted(reference, current)
    return merged, gaps


def merge_sorted(
    reference: FloatArray, current: FloatArray
) -> tuple[FloatArray, FloatArray, float]:
    """``ecdf_gaps`` of two ascending finite arrays, and the KS statistic read off the same pass.

    Ties are merged reference first. The samples are cut at shared values into blocks of about
    ``_MERGE_BLOCK`` values a side (every value of a block below every value of the next), each
    merged in cache; counts carried across blocks make the result equal, bit for bit, to merging
    the whole samples at once.

    >>> merged, gaps, statistic = merge_sorted(np.array([1.0, 2.0]), np.array([2.0, 3.0]))
    >>> merged.tolist(), gaps.tolist(), statistic
    ([1.0, 2.0, 2.0, 3.0], [0.5, 1.0, 0.5, 0.0], 0.5)
    """
    merged, gaps, statistic, _ = _merge(reference, current, keep_gaps=True)
    assert gaps is not None
    return merged, gaps, statistic


def merge_sorted_area(
    reference: FloatArray, current: FloatArray
) -> tuple[FloatArray, float, float]:
    """As ``merge_sorted``, with the area between the two ECDFs (the Wasserstein-1 distance)
    summed block by block in place of the gaps, which are never held whole: 16 bytes a pooled
    value less.

    >>> merged, statistic, area = merge_sorted_area(np.array([1.0, 2.0]), np.array([2.0, 3.0]))
    >>> merged.tolist(), statistic, area
    ([1.0, 2.0, 2.0, 3.0], 0.5, 1.0)
    """
    merged, _, statistic, area = _merge(reference, current, keep_gaps=False)
    return merged, statistic, area


def _merge(
    reference: FloatArray, current: FloatArray, *, keep_gaps: bool
) -> tuple[FloatArray, FloatArray | None, float, float]:
    """The block-wise merge behind ``merge_sorted`` and ``merge_sorted_area``."""
    n_reference, n_current = reference.size, current.size
    cuts = np.union1d(reference[_MERGE_BLOCK::_MERGE_BLOCK], current[_MERGE_BLOCK::_MERGE_BLOCK])
    reference_bounds = np.concatenate([[0], np.searchsorted(reference, cuts), [n_reference]])
    current_bounds = np.concatenate([[0], np.searchsorted(current, cuts), [n_current]])
    merged = np.empty(n_reference + n_current, dtype=np.float64)
    gaps = np.empty_like(merged) if keep_gaps else None
    highest, lowest, area = -np.inf, np.inf, 0.0
    last_gap, last_value = 0.0, 0.0
    for block in range(cuts.size + 1):
        r0, r1 = int(reference_bounds[block]), int(reference_bounds[block + 1])
        c0, c1 = int(current_bounds[block]), int(current_bounds[block + 1])
        start, stop = r0 + c0, r1 + c1
        if stop == start:
            continue
        pooled = np.concatenate([reference[r0:r1], current[c0:c1]])
        # A stable argsort of two sorted runs is a linear merge (timsort), with ties reference first.
        order = np.argsort(pooled, kind="stable")
        reference_seen = np.cumsum(order < r1 - r0, dtype=np.int64)
        reference_seen += r0
        current_seen = np.arange(start + 1, stop + 1) - reference_seen
        block_values = np.take(pooled, order, out=merged[start:stop])
        block_gaps = np.empty(stop - start) if gaps is None else gaps[start:stop]
        np.subtract(reference_seen / n_reference, current_seen / n_current, out=block_gaps)
        # Inside a run of tied values the partial counts are not ECDF values: read each run at its
        # end, as scipy's searchsorted(side="right") does. A block ends where a run does.
        run_end = np.ones(block_values.size, dtype=bool)
        run_end[:-1] = block_values[1:] != block_values[:-1]
        at_ends = block_gaps[run_end]
        highest, lowest = max(highest, float(at_ends.max())), min(lowest, float(at_ends.min()))
        # Between consecutive pooled values both ECDFs are flat: the area is |gap| x step.
        if start > 0:
            area += abs(last_gap) * (float(block_values[0]) - last_value)
        area += float(np.dot(np.abs(block_gaps[:-1]), np.diff(block_values)))
        last_gap, last_value = float(block_gaps[-1]), float(block_values[-1])
    statistic = float(max(highest, np.clip(-lowest, 0.0, 1.0)))
    return merged, gaps, statistic, area


def ks_statistic(merged: FloatArray, gaps: FloatArray) -> float:
    """The KS statistic from ``ecdf_gaps``: the largest |F_reference − F_current|."""
    # Inside a run of tied values the partial counts are not ECDF values: read each run at its end,
    # as scipy's searchsorted(side="right") does.
    run_end = np.ones(merged.size, dtype=bool)
    run_end[:-1] = merged[1:] != merged[:-1]
    at_ends = gaps[run_end]
    return float(max(at_ends.max(), np.clip(-at_ends.min(), 0.0, 1.0)))


def ks_p_value(statistic: float, reference: FloatArray, current: FloatArray) -> float:
    """The two-sided p-value of ``statistic`` for samples of these sizes, as scipy gives it."""
    if max(reference.size, current.size) <= _KS_EXACT_MAX_N:
        # Small samples: scipy's exact distribution, exactly as its 'auto' mode picks it. scipy warns
        # when the exact sum fails and falls back to the asymptotic one; that fallback is fine here.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "ks_2samp: Exact calculation", RuntimeWarning)
            return float(stats.ks_2samp(reference, current).pvalue)
    effective_n = reference.size * current.size / (reference.size + current.size)
    return _kolmogorov_sf(statistic, int(np.round(effective_n)))


def _kolmogorov_sf(statistic: float, n: int) -> float:
    """``scipy.stats.kstwo.sf(statistic, n)``, with its slowest branch vectorized.

    Where scipy takes 2 · ``scipy.special.smirnov(n, statistic)`` for n > 140, that function sums n
    terms in a scalar loop: about a second at n = 500 000, per column. The same sum in numpy agrees
    to about 1e-9 relative and takes a tenth of that.
    """
    steps = n * statistic
    smirnov_branch = statistic >= 0.5 or 2.2 <= steps * statistic < 370.0
    if n > 140 and 1.0 < steps < n - 1 and smirnov_branch:
        return float(np.clip(2.0 * _smirnov_sf(n, statistic), 0.0, 1.0))
    return float(np.clip(stats.kstwo.sf(statistic, n), 0.0, 1.0))


def _smirnov_sf(n: int, statistic: float) -> float:
    """P(D+ >= statistic) for a sample of n, by the Birnbaum–Tingey sum (as scipy.special.smirnov).

    x · Σ_j C(n, j) (x + j/n)^(j-1) (1 - x - j/n)^(n-j), over j with x + j/n < 1; all terms are
    positive, so summing them in logs then exponentiating loses nothing to cancellation.
    """
    steps = np.arange(0, math.floor(n * (1.0 - statistic)) + 1, dtype=np.float64)
    crossing = statistic + steps / n
    steps, crossing = steps[crossing < 1.0], crossing[crossing < 1.0]
    log_terms = (
        special.gammaln(n + 1.0)
        - special.gammaln(steps + 1.0)
        - special.gammaln(n - steps + 1.0)
        + (n - steps) * np.log1p(-crossing)
        + (steps - 1.0) * np.log(crossing)
    )
    return float(statistic * np.sum(np.exp(log_terms)))


def ks_noise(n_reference: int, n_current: int) -> float:
    """The KS statistic's ``NOISE_QUANTILE`` quantile under no drift (continuous values), from the
    Kolmogorov distribution at the effective size n·m/(n+m).

    >>> round(ks_noise(1_000, 1_000), 4)
    0.0868
    """
    effective_n = max(1, round(n_reference * n_current / (n_reference + n_current)))
    return float(stats.kstwo.isf(1.0 - NOISE_QUANTILE, effective_n))
