"""Two-sample statistics on bin counts and on sorted samples, and their resampled nulls.

Pure numpy and scipy, no data frames: ``steward.data.drift`` runs these on the columns of raw rows
(exact mode), profile mode on the bin counts of mergeable profiles.

- On bin counts: ``psi_from_counts``, ``jensen_shannon_from_counts``, ``hellinger_from_counts``,
  ``wasserstein_from_counts`` and ``chi_square_from_counts``; on sorted samples ``ks_from_sorted``
  (equal to ``scipy.stats.ks_2samp``, with a vectorized tail for large samples).
- Bins: ``quantile_edges`` (at the reference quantiles) and ``bin_counts``.
- Resampled nulls, for the statistics whose null depends on the sample sizes (PSI, Jensen–Shannon,
  Hellinger, Wasserstein): multinomial bin counts drawn from the reference alone
  (``resampled_tests_from_counts``), each test giving a ``TwoSampleResult``; the draws themselves
  (``null_counts``) and the p-value of an observed statistic against them (``empirical_p_value``).
- A reference prepared once and tested against many current samples, every method at once:
  ``NumericReference`` (sorted, binned, gridded) and ``CategoricalReference``.
- Many tests at once: ``adjust_p_values`` (Benjamini–Hochberg, Bonferroni); reproducible draws:
  ``resolve_seed`` and ``keyed_rng``.

Example::

    >>> round(psi_from_counts([50, 50], [60, 40]), 4)
    0.0405
    >>> ks_from_sorted([1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 5.0, 6.0]).statistic
    0.5
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special, stats

from steward.errors import InvalidInputError

__all__ = [
    "BINNED_METHODS",
    "CATEGORICAL_METHODS",
    "CORRECTIONS",
    "NUMERIC_METHODS",
    "PSI_EPSILON",
    "WASSERSTEIN_GRID_BINS",
    "CategoricalReference",
    "ChiSquareResult",
    "KSResult",
    "NumericReference",
    "TwoSampleResult",
    "adjust_p_values",
    "bin_counts",
    "chi_square_from_counts",
    "empirical_p_value",
    "hellinger_from_counts",
    "jensen_shannon_from_counts",
    "keyed_rng",
    "ks_from_sorted",
    "null_counts",
    "psi_from_counts",
    "quantile_edges",
    "resampled_tests_from_counts",
    "resolve_seed",
    "wasserstein_from_counts",
]

FloatArray = npt.NDArray[np.float64]

#: The tests of a numeric sample, and of a categorical one, in the order reports list them.
NUMERIC_METHODS: tuple[str, ...] = ("ks", "psi", "jensen_shannon", "wasserstein", "hellinger")
CATEGORICAL_METHODS: tuple[str, ...] = ("chi_square", "psi", "jensen_shannon", "hellinger")
#: Bin shares below this are raised to it (then renormalized) before PSI takes logarithms. It keeps
#: PSI finite on empty bins and does not depend on the sample size, so exact and profile mode agree;
#: a bin holding share p on one side and nothing on the other adds about p·ln(p / 1e-4): 0.05 for a
#: 1% bin (under the 0.1 floor alone), 0.31 for a 5% bin (a new category that large alarms).
PSI_EPSILON = 1e-4
#: Reference-quantile bins on which the Wasserstein null is resampled.
WASSERSTEIN_GRID_BINS = 50
#: The corrections ``adjust_p_values`` knows.
CORRECTIONS: tuple[str, ...] = ("bh", "bonferroni", "none")

_KS_EXACT_MAX_N = 10_000  # where scipy.stats.ks_2samp's 'auto' mode leaves the exact distribution


# --- result types ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KSResult:
    """Two-sample Kolmogorov–Smirnov test: the largest gap between the two ECDFs, and its p-value."""

    statistic: float
    p_value: float


@dataclass(frozen=True)
class ChiSquareResult:
    """Pearson's chi-square test of homogeneity on a 2×k table, and Cramér's V as its effect size."""

    statistic: float
    p_value: float
    dof: int
    cramers_v: float


@dataclass(frozen=True)
class TwoSampleResult:
    """One method's statistic for a reference and a current sample, and its p-value.

    For PSI, Jensen–Shannon, Hellinger and Wasserstein the p-value is read off a null resampled
    from the reference alone: (1 + #{null >= statistic}) / (1 + resamples), never 0, and valid for
    a finite number of resamples.
    """

    statistic: float
    p_value: float


# --- statistics on bin counts ----------------------------------------------------------------------


def psi_from_counts(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> float:
    """Population stability index between two binned distributions.

    PSI = Σ (c − r)·ln(c / r) over the bin shares r and c, after shares below ``PSI_EPSILON`` are
    raised to it and renormalized.

    >>> round(psi_from_counts([50, 50], [60, 40]), 4)
    0.0405
    """
    reference, current = _validated_counts(reference_counts, current_counts)
    return float(_psi_batch(reference, current))


def jensen_shannon_from_counts(
    reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike
) -> float:
    """Jensen–Shannon distance (base 2, so within [0, 1]) between two binned distributions.

    >>> round(jensen_shannon_from_counts([50, 50], [60, 40]), 4)
    0.0854
    """
    reference, current = _validated_counts(reference_counts, current_counts)
    return float(_jensen_shannon_batch(reference, current))


def hellinger_from_counts(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> float:
    """Hellinger distance, √(Σ(√r − √c)² / 2), within [0, 1], between two binned distributions.

    >>> round(hellinger_from_counts([50, 50], [60, 40]), 4)
    0.0712
    """
    reference, current = _validated_counts(reference_counts, current_counts)
    return float(_hellinger_batch(reference, current))


def wasserstein_from_counts(
    reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike, support: npt.ArrayLike
) -> float:
    """Wasserstein-1 distance between two binned distributions whose bins sit at ``support``.

    ``support`` holds one increasing location per bin (a bin mean or midpoint). The result is in the
    units of ``support``; divide by the reference standard deviation to compare across columns.

    >>> wasserstein_from_counts([1, 1, 0], [0, 1, 1], [0.0, 1.0, 2.0])
    1.0
    """
    reference, current = _validated_counts(reference_counts, current_counts)
    locations = np.asarray(support, dtype=np.float64)
    if locations.shape != reference.shape or not np.all(np.diff(locations) > 0):
        raise InvalidInputError(
            f"support must hold one strictly increasing, finite location per bin "
            f"({reference.size} bins), got {locations.tolist()[:10]}; pass the bins' sorted locations"
        )
    return float(_wasserstein_batch(reference, current, locations))


def chi_square_from_counts(
    reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike
) -> ChiSquareResult:
    """Chi-square test of homogeneity of the category counts of two samples (no continuity correction).

    Categories empty on both sides are dropped; the result equals
    ``scipy.stats.chi2_contingency([reference_counts, current_counts], correction=False)``.

    >>> result = chi_square_from_counts([50, 50], [60, 40])
    >>> round(result.statistic, 4), round(result.p_value, 4), result.dof
    (2.0202, 0.1552, 1)
    """
    reference, current = _validated_counts(reference_counts, current_counts)
    observed = np.vstack([reference, current])[:, (reference + current) > 0]
    dof = observed.shape[1] - 1
    if dof == 0:  # one category in all: nothing can differ (scipy answers the same)
        return ChiSquareResult(statistic=0.0, p_value=1.0, dof=0, cramers_v=0.0)
    total = float(observed.sum())
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / total
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return ChiSquareResult(
        statistic=statistic,
        p_value=float(stats.chi2.sf(statistic, dof)),
        dof=dof,
        cramers_v=math.sqrt(statistic / total),
    )


def _validated_counts(
    reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    try:
        reference = np.asarray(reference_counts, dtype=np.float64)
        current = np.asarray(current_counts, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(
            f"bin counts must be numbers ({error}); pass arrays of counts"
        ) from error
    if reference.ndim != 1 or reference.shape != current.shape or reference.size == 0:
        raise InvalidInputError(
            f"bin counts must be two non-empty 1-D arrays of one length, got shapes {reference.shape} "
            f"and {current.shape}; pass one count per bin, in the same bin order on both sides"
        )
    for side, counts in (("reference", reference), ("current", current)):
        if not np.all(np.isfinite(counts) & (counts >= 0)) or counts.sum() <= 0:
            raise InvalidInputError(
                f"{side} bin counts must be finite, >= 0 and not all 0, got {counts.tolist()[:10]}; "
                "each side needs at least one observation"
            )
    return reference, current


def _shares(counts: FloatArray) -> FloatArray:
    return counts / counts.sum(axis=-1, keepdims=True)


# The *_batch functions take counts with bins on the last axis, so that one call scores every resample.
def _psi_batch(reference: FloatArray, current: FloatArray) -> FloatArray:
    def smoothed(counts: FloatArray) -> FloatArray:
        return _shares(np.maximum(_shares(counts), PSI_EPSILON))

    reference_share, current_share = smoothed(reference), smoothed(current)
    terms = (current_share - reference_share) * np.log(current_share / reference_share)
    return np.asarray(np.sum(terms, axis=-1))


def _jensen_shannon_batch(reference: FloatArray, current: FloatArray) -> FloatArray:
    reference_share, current_share = _shares(reference), _shares(current)
    middle = (reference_share + current_share) / 2.0
    divergence = np.sum(special.rel_entr(reference_share, middle), axis=-1) + np.sum(
        special.rel_entr(current_share, middle), axis=-1
    )
    return np.asarray(np.sqrt(np.maximum(divergence / np.log(2.0), 0.0) / 2.0))


def _hellinger_batch(reference: FloatArray, current: FloatArray) -> FloatArray:
    gap = np.sqrt(_shares(reference)) - np.sqrt(_shares(current))
    return np.asarray(np.sqrt(np.sum(gap * gap, axis=-1) / 2.0))


def _wasserstein_batch(
    reference: FloatArray, current: FloatArray, support: FloatArray
) -> FloatArray:
    gaps = np.cumsum(_shares(reference), axis=-1) - np.cumsum(_shares(current), axis=-1)
    return np.asarray(np.sum(np.abs(gaps[..., :-1]) * np.diff(support), axis=-1))


_BINNED_STATISTICS: Mapping[str, Callable[[FloatArray, FloatArray], FloatArray]] = MappingProxyType(
    {"psi": _psi_batch, "jensen_shannon": _jensen_shannon_batch, "hellinger": _hellinger_batch}
)
#: The statistics of bin counts alone, whose nulls ``resampled_tests_from_counts`` draws.
BINNED_METHODS: tuple[str, ...] = tuple(_BINNED_STATISTICS)


# --- statistics on sorted samples ------------------------------------------------------------------


def ks_from_sorted(reference_sorted: npt.ArrayLike, current_sorted: npt.ArrayLike) -> KSResult:
    """Two-sample Kolmogorov–Smirnov test on two ascending arrays, equal to ``scipy.stats.ks_2samp``.

    >>> result = ks_from_sorted([1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 5.0, 6.0])
    >>> result.statistic, round(result.p_value, 4)
    (0.5, 0.7714)
    """
    reference = _validated_sorted(reference_sorted, "reference sample")
    current = _validated_sorted(current_sorted, "current sample")
    merged, gaps = _ecdf_gaps(reference, current)
    statistic = _ks_statistic(merged, gaps)
    return KSResult(statistic=statistic, p_value=_ks_p_value(statistic, reference, current))


def _validated_sorted(values: npt.ArrayLike, what: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        raise InvalidInputError(
            f"the {what} must be a non-empty 1-D array of finite numbers, got shape "
            f"{array.shape}; drop missing values first"
        )
    if np.any(array[1:] < array[:-1]):
        raise InvalidInputError(f"the {what} is not sorted; pass np.sort(values)")
    return array


def _ecdf_gaps(reference: FloatArray, current: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The pooled sorted values, and F_reference − F_current counted up to each of them."""
    pooled = np.concatenate([reference, current])
    # A stable argsort of two sorted runs is a linear merge (timsort), with ties reference first.
    order = np.argsort(pooled, kind="stable")
    reference_seen = np.cumsum(order < reference.size)
    current_seen = np.arange(1, pooled.size + 1) - reference_seen
    return pooled[order], reference_seen / reference.size - current_seen / current.size


def _ks_statistic(merged: FloatArray, gaps: FloatArray) -> float:
    # Inside a run of tied values the partial counts are not ECDF values: read each run at its end,
    # as scipy's searchsorted(side="right") does.
    run_end = np.ones(merged.size, dtype=bool)
    run_end[:-1] = merged[1:] != merged[:-1]
    at_ends = gaps[run_end]
    return float(max(at_ends.max(), np.clip(-at_ends.min(), 0.0, 1.0)))


def _ks_p_value(statistic: float, reference: FloatArray, current: FloatArray) -> float:
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


def _normalized_wasserstein(merged: FloatArray, gaps: FloatArray, reference_std: float) -> float:
    # Between consecutive pooled values both ECDFs are flat, so the integral of |gap| is a dot product.
    distance = float(np.dot(np.abs(gaps[:-1]), np.diff(merged)))
    if reference_std > 0:
        return distance / reference_std
    # A constant reference: any movement is infinitely many of its (zero) standard deviations.
    return math.inf if distance > 0 else 0.0


# --- bins ------------------------------------------------------------------------------------------


def quantile_edges(sorted_values: npt.ArrayLike, bins: int) -> FloatArray:
    """Inner bin edges at the quantiles 1/bins … (bins-1)/bins of an ascending sample.

    Quantiles interpolate linearly (numpy's default method); tied quantiles merge their bins rather
    than leave empty ones, so there may be fewer than ``bins - 1`` edges.

    >>> quantile_edges([1.0, 2.0, 3.0, 4.0, 5.0], 4).tolist()
    [2.0, 3.0, 4.0]
    >>> quantile_edges([0.0, 0.0, 0.0, 1.0], 4).tolist()
    [0.0, 0.25]
    """
    ordered = _validated_sorted(sorted_values, "sample")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise InvalidInputError(f"bins must be an int >= 1, got {bins!r}; the usual is 10")
    # Read off the sorted values directly: np.quantile would partition the array again.
    position = np.linspace(0.0, 1.0, bins + 1)[1:-1] * (ordered.size - 1)
    below = np.floor(position).astype(np.intp)
    above = np.minimum(below + 1, ordered.size - 1)
    low, high = ordered[below], ordered[above]
    return np.unique(low + (high - low) * (position - below))


def bin_counts(sorted_values: npt.ArrayLike, edges: npt.ArrayLike) -> FloatArray:
    """Count of an ascending sample in each bin of the inner ``edges``: len(edges) + 1 counts.

    Bins are right-closed, (edges[i-1], edges[i]], and open-ended at both extremes, so every value
    falls in one.

    >>> bin_counts([0.5, 1.0, 1.5, 9.0], [1.0, 2.0]).tolist()
    [2.0, 1.0, 1.0]
    """
    ordered = _validated_sorted(sorted_values, "sample")
    return _bin_counts(ordered, _validated_edges(edges))


def _validated_edges(edges: npt.ArrayLike) -> FloatArray:
    array = np.asarray(edges, dtype=np.float64)
    if array.ndim != 1 or not np.all(np.isfinite(array)) or np.any(np.diff(array) <= 0):
        raise InvalidInputError(
            f"bin edges must be a 1-D array of finite, strictly increasing numbers, got "
            f"{array.tolist()[:10]}; pass e.g. quantile_edges(values, 10)"
        )
    return array


def _bin_counts(sorted_values: FloatArray, edges: FloatArray) -> FloatArray:
    return np.diff(_bin_bounds(sorted_values, edges)).astype(np.float64)


def _bin_bounds(sorted_values: FloatArray, edges: FloatArray) -> npt.NDArray[np.intp]:
    inner = np.searchsorted(sorted_values, edges, side="right")
    return np.concatenate([[0], inner, [sorted_values.size]])


def _bin_sums(sorted_values: FloatArray, edges: FloatArray) -> FloatArray:
    bounds = _bin_bounds(sorted_values, edges)
    # The appended 0 gives trailing empty bins a valid start; reduceat fills empty bins with a
    # stray value, which is zeroed.
    sums = np.add.reduceat(np.append(sorted_values, 0.0), bounds[:-1])
    sums[bounds[:-1] == bounds[1:]] = 0.0
    return np.asarray(sums, dtype=np.float64)


# --- resampled nulls -------------------------------------------------------------------------------


def resampled_tests_from_counts(
    reference_counts: npt.ArrayLike,
    current_counts: npt.ArrayLike,
    methods: Sequence[str] = BINNED_METHODS,
    *,
    n_resamples: int = 1_000,
    rng: np.random.Generator | int | None = 0,
) -> dict[str, TwoSampleResult]:
    """PSI, Jensen–Shannon and Hellinger of two binned samples, with p-values from a resampled null.

    The null is ``n_resamples`` pairs of samples of the two sizes, drawn from the reference bin
    frequencies alone (multinomial counts: the same as drawing rows, at a cost independent of the
    row count); all ``methods`` score the same draws. ``rng`` is a numpy Generator (used as it is)
    or a seed.

    >>> results = resampled_tests_from_counts([500, 500], [600, 400], ["psi"])
    >>> round(results["psi"].statistic, 4), round(results["psi"].p_value, 4)
    (0.0405, 0.001)
    """
    reference, current = _validated_counts(reference_counts, current_counts)
    _check_methods(methods, BINNED_METHODS, "bin counts alone")
    return _binned_tests(
        reference, current, methods, np.random.default_rng(rng), _checked_resamples(n_resamples)
    )


def _binned_tests(
    reference_counts: FloatArray,
    current_counts: FloatArray,
    methods: Sequence[str],
    rng: np.random.Generator,
    n_resamples: int,
) -> dict[str, TwoSampleResult]:
    """Statistic and resampled p-value of each binned method in ``methods``; others are skipped."""
    wanted = [method for method in methods if method in _BINNED_STATISTICS]
    if not wanted:
        return {}
    null_reference, null_current = null_counts(
        reference_counts, round(float(current_counts.sum())), rng, n_resamples
    )
    results: dict[str, TwoSampleResult] = {}
    for method in wanted:
        statistic = _BINNED_STATISTICS[method]
        observed = float(statistic(reference_counts, current_counts))
        null = statistic(null_reference, null_current)
        results[method] = TwoSampleResult(observed, empirical_p_value(null, observed))
    return results


def _check_methods(methods: Sequence[str], known: Sequence[str], what: str) -> None:
    unknown = [method for method in methods if method not in known]
    if isinstance(methods, str) or unknown:
        raise InvalidInputError(
            f"methods={methods!r}: {unknown or methods!r} cannot test {what}; choose from {known}"
        )


def _checked_resamples(n_resamples: int) -> int:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise InvalidInputError(f"n_resamples must be an int >= 1, got {n_resamples!r}")
    return n_resamples


def null_counts(
    reference_counts: FloatArray, n_current: int, rng: np.random.Generator, n_resamples: int
) -> tuple[FloatArray, FloatArray]:
    """Bin counts of ``n_resamples`` pairs of a reference and a current sample (of the reference's
    size and ``n_current``) both drawn from the reference bin frequencies, one pair per row."""
    shares = reference_counts / reference_counts.sum()
    n_reference = round(float(reference_counts.sum()))
    null_reference = rng.multinomial(n_reference, shares, size=n_resamples).astype(np.float64)
    null_current = rng.multinomial(n_current, shares, size=n_resamples).astype(np.float64)
    return null_reference, null_current


def empirical_p_value(null: FloatArray, observed: float) -> float:
    """The share of a resampled null at least as large as ``observed``, as ``(1 + k) / (1 + B)``.

    >>> empirical_p_value(np.array([0.1, 0.2, 0.3]), 0.25)
    0.5
    """
    # (1 + #exceed) / (1 + B) is never 0, and stays valid for a finite number of resamples.
    tolerance = 1e-12 * max(1.0, abs(observed))
    exceed = int(np.count_nonzero(null >= observed - tolerance))
    return (1.0 + exceed) / (1.0 + null.size)


# --- a reference prepared once ---------------------------------------------------------------------


@dataclass(frozen=True)
class NumericReference:
    """A numeric reference sample prepared once to be tested against many current samples.

    Built by ``from_values``: the values sorted (reused by KS, the bins and Wasserstein), inner
    edges at ``bins`` reference quantiles with the reference count in each, and the finer
    ``WASSERSTEIN_GRID_BINS`` grid of the Wasserstein null with each grid bin's count and sum.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> reference = NumericReference.from_values(rng.normal(size=2_000))
    >>> results = reference.compare(np.sort(rng.normal(0.5, size=2_000)), ["ks", "wasserstein"])
    >>> results["ks"].p_value < 0.001, round(results["wasserstein"].statistic, 1)
    (True, 0.5)
    """

    values: FloatArray = field(repr=False)
    std: float
    edges: FloatArray = field(repr=False)
    counts: FloatArray = field(repr=False)
    grid_edges: FloatArray = field(repr=False)
    grid_counts: FloatArray = field(repr=False)
    grid_sums: FloatArray = field(repr=False)

    @classmethod
    def from_values(cls, values: npt.ArrayLike, bins: int = 10) -> NumericReference:
        """Prepare a reference from its finite values, in any order."""
        ordered = _validated_sorted(np.sort(np.asarray(values, dtype=np.float64)), "reference")
        edges = quantile_edges(ordered, bins)
        grid_edges = quantile_edges(ordered, WASSERSTEIN_GRID_BINS)
        return cls(
            values=ordered,
            std=float(np.std(ordered)),
            edges=edges,
            counts=_bin_counts(ordered, edges),
            grid_edges=grid_edges,
            grid_counts=_bin_counts(ordered, grid_edges),
            grid_sums=_bin_sums(ordered, grid_edges),
        )

    def compare(
        self,
        current_sorted: npt.ArrayLike,
        methods: Sequence[str] = NUMERIC_METHODS,
        *,
        n_resamples: int = 1_000,
        rng: np.random.Generator | int | None = 0,
    ) -> dict[str, TwoSampleResult]:
        """Each method's statistic and p-value for an ascending current sample.

        ``ks`` equals ``scipy.stats.ks_2samp``. ``wasserstein`` is the exact distance over the
        reference standard deviation (infinite when a constant reference moves), its p-value that
        of the distance on the grid against a resampled null. ``psi``, ``jensen_shannon`` and
        ``hellinger`` are computed on the reference-quantile bins, with resampled nulls.
        """
        current = _validated_sorted(current_sorted, "current sample")
        _check_methods(methods, NUMERIC_METHODS, "a numeric sample")
        generator, n_resamples = np.random.default_rng(rng), _checked_resamples(n_resamples)
        found: dict[str, TwoSampleResult] = {}
        if "ks" in methods or "wasserstein" in methods:
            merged, gaps = _ecdf_gaps(self.values, current)
            if "ks" in methods:
                statistic = _ks_statistic(merged, gaps)
                p_value = _ks_p_value(statistic, self.values, current)
                found["ks"] = TwoSampleResult(statistic, p_value)
            if "wasserstein" in methods:
                distance = _normalized_wasserstein(merged, gaps, self.std)
                p_value = self._wasserstein_p_value(current, generator, n_resamples)
                found["wasserstein"] = TwoSampleResult(distance, p_value)
        current_counts = _bin_counts(current, self.edges)
        found.update(_binned_tests(self.counts, current_counts, methods, generator, n_resamples))
        return found

    def _wasserstein_p_value(
        self, current: FloatArray, rng: np.random.Generator, n_resamples: int
    ) -> float:
        """P-value of the Wasserstein distance on the reference-quantile grid, against a resampled null.

        Each grid bin's mass sits at the reference mean of the bin (the current mean where the
        reference has none); on this grid the distance is a function of the bin counts, so its null
        is drawn as multinomial counts from the reference grid frequencies.
        """
        current_counts = _bin_counts(current, self.grid_edges)
        current_sums = _bin_sums(current, self.grid_edges)
        with np.errstate(invalid="ignore", divide="ignore"):
            support = np.where(
                self.grid_counts > 0,
                self.grid_sums / self.grid_counts,
                current_sums / current_counts,
            )
        used = (self.grid_counts + current_counts) > 0
        reference_counts, current_counts, support = (
            self.grid_counts[used],
            current_counts[used],
            support[used],
        )
        observed = float(_wasserstein_batch(reference_counts, current_counts, support))
        null_reference, null_current = null_counts(reference_counts, current.size, rng, n_resamples)
        null = _wasserstein_batch(null_reference, null_current, support)
        return empirical_p_value(null, observed)


@dataclass(frozen=True)
class CategoricalReference:
    """A categorical reference sample prepared once: its categories, commonest first, and counts.

    Tested against a current sample, the categories the reference never saw share one extra
    bucket, empty on the reference side.

    >>> reference = CategoricalReference.from_counts({"basic": 600, "pro": 400})
    >>> reference.categories
    ('basic', 'pro')
    >>> result = reference.compare({"basic": 500, "pro": 400, "team": 100})["chi_square"]
    >>> round(result.statistic, 3), result.p_value < 0.001
    (0.234, True)
    """

    categories: tuple[Any, ...]
    counts: FloatArray = field(repr=False)

    @classmethod
    def from_counts(cls, counts: Mapping[Any, int]) -> CategoricalReference:
        """Prepare a reference from its count per category."""
        ranked = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
        values = np.array([count for _, count in ranked], dtype=np.float64)
        if not ranked or not np.all(np.isfinite(values) & (values >= 0)) or values.sum() <= 0:
            raise InvalidInputError(
                f"category counts must be finite, >= 0 and not all 0, got {dict(ranked[:10])}; "
                "the reference needs at least one observation"
            )
        return cls(categories=tuple(category for category, _ in ranked), counts=values)

    def compare(
        self,
        current_counts: Mapping[Any, int],
        methods: Sequence[str] = CATEGORICAL_METHODS,
        *,
        n_resamples: int = 1_000,
        rng: np.random.Generator | int | None = 0,
    ) -> dict[str, TwoSampleResult]:
        """Each method's statistic and p-value for the current count per category.

        ``chi_square``'s statistic is Cramér's V, the effect size of its p-value's test (see
        ``chi_square_from_counts``); ``psi``, ``jensen_shannon`` and ``hellinger`` have resampled
        nulls.
        """
        _check_methods(methods, CATEGORICAL_METHODS, "a categorical sample")
        known = set(self.categories)
        unseen = sum(count for category, count in current_counts.items() if category not in known)
        reference_vector = np.append(self.counts, 0.0)
        current_vector = np.array(
            [current_counts.get(category, 0) for category in self.categories] + [unseen],
            dtype=np.float64,
        )
        reference_vector, current_vector = _validated_counts(reference_vector, current_vector)
        found: dict[str, TwoSampleResult] = {}
        if "chi_square" in methods:
            chi_square = chi_square_from_counts(reference_vector, current_vector)
            found["chi_square"] = TwoSampleResult(chi_square.cramers_v, chi_square.p_value)
        generator, n_resamples = np.random.default_rng(rng), _checked_resamples(n_resamples)
        found.update(
            _binned_tests(reference_vector, current_vector, methods, generator, n_resamples)
        )
        return found


# --- many tests at once, and reproducible draws ----------------------------------------------------


def adjust_p_values(p_values: npt.ArrayLike, correction: str = "bh") -> FloatArray:
    """P-values adjusted for testing many hypotheses at once: ``"bh"``, ``"bonferroni"`` or ``"none"``.

    ``"bh"`` (Benjamini–Hochberg) controls the false discovery rate and equals
    ``scipy.stats.false_discovery_control``; ``"bonferroni"`` controls the family-wise error rate.

    >>> adjust_p_values([0.01, 0.02, 0.04], "bh").round(3).tolist()
    [0.03, 0.03, 0.04]
    """
    values = np.asarray(p_values, dtype=np.float64)
    if correction not in CORRECTIONS:
        raise InvalidInputError(
            f"correction={correction!r} is unknown; choose one of {CORRECTIONS}"
        )
    if values.ndim != 1 or np.any(~((values >= 0) & (values <= 1))):
        raise InvalidInputError(
            f"p-values must be a 1-D array within [0, 1], got {values.tolist()[:10]}; check their source"
        )
    if values.size == 0 or correction == "none":
        return values.copy()
    if correction == "bonferroni":
        return np.minimum(values * values.size, 1.0)
    return np.asarray(stats.false_discovery_control(values, method="bh"), dtype=np.float64)


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
