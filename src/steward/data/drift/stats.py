"""Two-sample statistics on bin counts and on samples, and their nulls.

Pure numpy and scipy, no data frames: ``steward.data.drift`` runs these on the columns of raw rows
(exact mode), profile mode on the bin counts of mergeable profiles. KS lives in
``steward.data.drift.ks``.

- On bin counts: ``psi_from_counts``, ``jensen_shannon_from_counts``, ``hellinger_from_counts``,
  ``wasserstein_from_counts`` and ``chi_square_from_counts``.
- Bins (from ``steward.data.drift.bins``): ``quantile_values`` and ``quantile_edges`` (values of
  the sample, never interpolated, so exact and profile mode cut at the same values) and
  ``bin_counts``.
- Nulls, for the statistics whose no-drift distribution depends on the sample sizes: multinomial
  bin counts drawn from the reference (``resampled_tests_from_counts``, ``null_counts``), the
  p-value of an observed statistic against them (``empirical_p_value``) and its noise
  (``noise_level``: the ``NOISE_QUANTILE`` quantile, added to a report's floor).
- A reference prepared once and tested against many current samples, every method at once:
  ``NumericReference`` (the Wasserstein null splits the pooled sample at random) and
  ``CategoricalReference`` (a null that can produce categories the reference never saw).
- Many tests at once: ``adjust_p_values`` (Benjamini–Hochberg, Bonferroni); reproducible draws:
  ``resolve_seed`` and ``keyed_rng``.

Example::

    >>> round(psi_from_counts([50, 50], [60, 40]), 4)
    0.0405
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special, stats

from steward._util.seeds import keyed_rng, resolve_seed
from steward.data.drift.bins import (
    bin_counts,
    quantile_edges,
    quantile_values,
    sorted_bin_counts,
    sorted_quantile_edges,
)
from steward.data.drift.ks import (
    NOISE_QUANTILE,
    ks_noise,
    ks_p_value,
    merge_sorted_area,
    sorted_sample,
)
from steward.data.drift.wasserstein import (
    WASSERSTEIN_GRID_BINS,
    GridNulls,
    gridded_wasserstein,
    permuted_wasserstein,
    scaled_wasserstein,
    wasserstein_batch,
    wasserstein_grid,
)
from steward.errors import InvalidInputError

__all__ = [
    "BINNED_METHODS",
    "CATEGORICAL_METHODS",
    "CORRECTIONS",
    "NOISE_QUANTILE",
    "NUMERIC_METHODS",
    "PSI_EPSILON",
    "WASSERSTEIN_GRID_BINS",
    "CategoricalReference",
    "ChiSquareResult",
    "NumericReference",
    "TwoSampleResult",
    "adjust_p_values",
    "bin_counts",
    "chi_square_from_counts",
    "empirical_p_value",
    "hellinger_from_counts",
    "jensen_shannon_from_counts",
    "keyed_rng",
    "noise_level",
    "null_counts",
    "psi_from_counts",
    "quantile_edges",
    "quantile_values",
    "resampled_tests_from_counts",
    "resolve_seed",
    "scaled_wasserstein",
    "wasserstein_from_counts",
]

FloatArray = npt.NDArray[np.float64]

#: The tests of a numeric sample, and of a categorical one, in the order reports list them.
NUMERIC_METHODS: tuple[str, ...] = ("ks", "psi", "jensen_shannon", "wasserstein", "hellinger")
CATEGORICAL_METHODS: tuple[str, ...] = ("chi_square", "psi", "jensen_shannon", "hellinger")
#: Bin shares below max(PSI_EPSILON, 1/(2n)) on a side of n rows are raised to it (then
#: renormalized) before PSI takes logarithms. Half a row is the least share a sample can tell from
#: zero, so a level a few rows hold on one side and none on the other adds little (a many-level
#: column stays quiet under no drift), while a bin holding share p on one side and nothing on the
#: other adds about p·ln(2pn): a new category in 5% of 1,000 rows adds 0.23.
PSI_EPSILON = 1e-4
#: Up to this many pooled rows the Wasserstein null splits the pooled values themselves.
PERMUTATION_MAX_ROWS = 1_000
#: The corrections ``adjust_p_values`` knows.
CORRECTIONS: tuple[str, ...] = ("bh", "bonferroni", "none")


# --- result types ----------------------------------------------------------------------------------


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

    For PSI, Jensen–Shannon, Hellinger, Wasserstein and (on categories) chi-square the p-value is
    read off a resampled null: (1 + #{null >= statistic}) / (1 + resamples), never 0, and valid for
    a finite number of resamples. ``noise`` is the statistic's ``NOISE_QUANTILE`` quantile under no
    drift at these sample sizes: what chance alone reaches one time in a thousand. A report alarms only
    when the statistic exceeds its floor plus this noise.
    """

    statistic: float
    p_value: float
    noise: float


# --- statistics on bin counts ----------------------------------------------------------------------


def psi_from_counts(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> float:
    """Population stability index between two binned distributions.

    PSI = Σ (c − r)·ln(c / r) over the bin shares r and c, after shares below
    max(``PSI_EPSILON``, half a row) are raised to it and renormalized.

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
    return float(wasserstein_batch(reference, current, locations))


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
        total = counts.sum(axis=-1, keepdims=True)
        least = np.maximum(PSI_EPSILON, 0.5 / total)
        return _shares(np.maximum(counts / total, least))

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


_BINNED_STATISTICS: Mapping[str, Callable[[FloatArray, FloatArray], FloatArray]] = MappingProxyType(
    {"psi": _psi_batch, "jensen_shannon": _jensen_shannon_batch, "hellinger": _hellinger_batch}
)
#: The statistics of bin counts alone, whose nulls ``resampled_tests_from_counts`` draws.
BINNED_METHODS: tuple[str, ...] = tuple(_BINNED_STATISTICS)


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
    nulls = null_counts(reference_counts, round(float(current_counts.sum())), rng, n_resamples)
    return _scored(_BINNED_STATISTICS, wanted, (reference_counts, current_counts), nulls)


def _scored(
    statistics: Mapping[str, Callable[[FloatArray, FloatArray], FloatArray]],
    methods: Sequence[str],
    observed_pair: tuple[FloatArray, FloatArray],
    null_pairs: tuple[FloatArray, FloatArray],
) -> dict[str, TwoSampleResult]:
    """Each method's statistic on the observed pair, with p-value and noise from the null pairs."""
    results: dict[str, TwoSampleResult] = {}
    for method in methods:
        statistic = statistics[method]
        observed = float(statistic(*observed_pair))
        null = statistic(*null_pairs)
        results[method] = TwoSampleResult(
            observed, empirical_p_value(null, observed), noise_level(null)
        )
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


def noise_level(null: FloatArray) -> float:
    """A statistic's noise: the ``NOISE_QUANTILE`` quantile of its resampled no-drift values.

    >>> noise_level(np.arange(1_001.0))
    999.0
    """
    # "higher" reads a drawn value, never interpolates (a null may hold infinities).
    return float(np.quantile(null, NOISE_QUANTILE, method="higher"))


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

    @classmethod
    def from_values(
        cls, values: npt.ArrayLike, bins: int = 10, *, check: bool = True
    ) -> NumericReference:
        """Prepare a reference from its finite values, in any order (sorted once, into a copy).

        ``check=False`` skips checking the values are finite, for a caller that checked them.
        """
        ordered = np.sort(np.asarray(values, dtype=np.float64))
        if check:
            ordered = sorted_sample(ordered, "reference")
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise InvalidInputError(f"bins must be an int >= 1, got {bins!r}; the usual is 10")
        edges = sorted_quantile_edges(ordered, bins)
        return cls(
            values=ordered,
            std=float(np.std(ordered)),
            edges=edges,
            counts=sorted_bin_counts(ordered, edges),
        )

    def compare(
        self,
        current_sorted: npt.ArrayLike,
        methods: Sequence[str] = NUMERIC_METHODS,
        *,
        n_resamples: int = 1_000,
        rng: np.random.Generator | int | None = 0,
        check: bool = True,
        nulls: GridNulls | None = None,
    ) -> dict[str, TwoSampleResult]:
        """Each method's statistic and p-value for an ascending current sample.

        ``ks`` equals ``scipy.stats.ks_2samp``. ``wasserstein`` is the exact distance over the
        reference standard deviation, its p-value that of the distance on the grid against a
        resampled null; a constant reference has no standard deviation, so asking for it there is
        an error (see ``constant``). ``psi``, ``jensen_shannon`` and
        ``hellinger`` are computed on the reference-quantile bins, with resampled nulls.
        ``check=False`` skips checking the sample is finite and ascending (a caller that sorted
        finite values itself); the statistics come from one merge of the two sorted samples.
        ``nulls`` shares the Wasserstein null's draws with other columns compared in the same run
        (see ``GridNulls``); without it, this call draws its own from ``rng``.
        """
        if check:
            current = sorted_sample(current_sorted, "current sample")
        else:
            current = np.asarray(current_sorted, dtype=np.float64)
        _check_methods(methods, NUMERIC_METHODS, "a numeric sample")
        generator, n_resamples = np.random.default_rng(rng), _checked_resamples(n_resamples)
        # The binned methods draw from a generator of their own, so that their nulls are profile
        # mode's (which draws other nulls for Wasserstein and KS).
        binned_rng, generator = generator.spawn(2)
        found: dict[str, TwoSampleResult] = {}
        if "ks" in methods or "wasserstein" in methods:
            found.update(self._merged_tests(current, methods, generator, n_resamples, nulls))
        current_counts = sorted_bin_counts(current, self.edges)
        found.update(_binned_tests(self.counts, current_counts, methods, binned_rng, n_resamples))
        return found

    @property
    def constant(self) -> bool:
        """Whether the reference holds one value only (KS is then the share of other values)."""
        return bool(self.values[0] == self.values[-1])

    def _merged_tests(
        self,
        current: FloatArray,
        methods: Sequence[str],
        rng: np.random.Generator,
        n_resamples: int,
        nulls: GridNulls | None,
    ) -> dict[str, TwoSampleResult]:
        """KS and Wasserstein (those of ``methods``), both read off one merge of the samples."""
        found: dict[str, TwoSampleResult] = {}
        merged, statistic, area = merge_sorted_area(self.values, current)
        if "ks" in methods:
            p_value = ks_p_value(statistic, self.values, current)
            noise = ks_noise(self.values.size, current.size)
            found["ks"] = TwoSampleResult(statistic, p_value, noise)
        if "wasserstein" in methods:
            if self.constant:
                raise InvalidInputError(
                    f"the reference is constant (every value {self.values[0]!r}), so a distance "
                    "in its standard deviations is undefined; leave 'wasserstein' out of methods "
                    "and read the share of other values from 'ks'"
                )
            distance = area / self.std
            # P-value and noise (in reference standard deviations) against the pooled sample split
            # at random: under no drift every split of the pooled values into a reference and a
            # current of the same sizes is as likely as the observed one (a permutation test,
            # values the reference happened to miss included). Each split's distance is divided
            # by its own reference side's deviation, as the observed one is, so a reference narrow
            # by chance is no evidence of drift. Above PERMUTATION_MAX_ROWS pooled rows the splits
            # are drawn on a grid of WASSERSTEIN_GRID_BINS pooled-quantile bins.
            if merged.size <= PERMUTATION_MAX_ROWS:
                null = permuted_wasserstein(merged, self.values.size, rng, n_resamples)
                p_value, noise = empirical_p_value(null, distance), noise_level(null)
            else:
                grid = wasserstein_grid(merged)
                del merged  # the draws need the grid only
                # The observed pair is scored on the grid as the draws are; the part of the exact
                # distance the grid does not resolve is added to the noise, so that the exact
                # statistic exceeds its threshold exactly when the gridded one exceeds the floor
                # plus the gridded noise.
                nulls = nulls or GridNulls(seed=int(rng.integers(2**63)))
                gridded, null = gridded_wasserstein(grid, self.values, current, nulls, n_resamples)
                p_value = empirical_p_value(null, gridded)
                noise = noise_level(null) + max(distance - gridded, 0.0)
            found["wasserstein"] = TwoSampleResult(distance, p_value, noise)
        return found


@dataclass(frozen=True)
class CategoricalReference:
    """A categorical reference sample prepared once: its categories, commonest first, and counts.

    Current rows in categories the reference never saw share one extra bucket. The null can hold
    such rows too: its reference side is resampled from the reference counts, and a category a
    resample misses sends its current rows to the bucket; its current side sets aside the
    Good–Turing mass of unseen categories (the share of reference categories seen once). So a
    long-tailed column is as quiet under no drift as a five-level one, while a category that 5% of
    current rows hold and the reference never did alarms. Every method, chi-square included, takes
    its p-value and noise from these draws (chi-square's asymptotic null fails on sparse tables).

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

    @property
    def unseen_mass(self) -> float:
        """Good–Turing's estimate of the share of rows in categories the reference never saw."""
        return float(np.count_nonzero(self.counts == 1) / self.counts.sum())

    def compare(
        self,
        current_counts: Mapping[Any, int],
        methods: Sequence[str] = CATEGORICAL_METHODS,
        *,
        n_resamples: int = 1_000,
        rng: np.random.Generator | int | None = 0,
    ) -> dict[str, TwoSampleResult]:
        """Each method's statistic, p-value and noise for the current count per category.

        ``chi_square``'s statistic is Cramér's V, √(χ² / N) on the 2 × k table (see
        ``chi_square_from_counts``); ``psi``, ``jensen_shannon`` and ``hellinger`` are computed on
        the same table.
        """
        known = set(self.categories)
        unseen = sum(count for category, count in current_counts.items() if category not in known)
        aligned = [current_counts.get(category, 0) for category in self.categories]
        return self.compare_counts(aligned, unseen, methods, n_resamples=n_resamples, rng=rng)

    def compare_counts(
        self,
        known_counts: npt.ArrayLike,
        unseen: int,
        methods: Sequence[str] = CATEGORICAL_METHODS,
        *,
        n_resamples: int = 1_000,
        rng: np.random.Generator | int | None = 0,
    ) -> dict[str, TwoSampleResult]:
        """As :meth:`compare`, for current counts aligned with ``categories`` plus the count of
        current rows in categories the reference never saw (profile mode holds no more)."""
        _check_methods(methods, CATEGORICAL_METHODS, "a categorical sample")
        reference_vector = np.append(self.counts, 0.0)
        current_vector = np.append(np.asarray(known_counts, dtype=np.float64), float(unseen))
        reference_vector, current_vector = _validated_counts(reference_vector, current_vector)
        generator, n_resamples = np.random.default_rng(rng), _checked_resamples(n_resamples)
        nulls = self._null_counts(round(float(current_vector.sum())), generator, n_resamples)
        observed = (reference_vector, current_vector)
        return _scored(_CATEGORICAL_STATISTICS, methods, observed, nulls)

    def _null_counts(
        self, n_current: int, rng: np.random.Generator, n_resamples: int
    ) -> tuple[FloatArray, FloatArray]:
        """Pairs of reference and current counts under no drift, the unseen bucket last."""
        shares = self.counts / self.counts.sum()
        unseen_mass = self.unseen_mass
        drawn = np.append((1.0 - unseen_mass) * shares, unseen_mass)
        n_reference = round(float(self.counts.sum()))
        null_reference = rng.multinomial(n_reference, shares, size=n_resamples).astype(np.float64)
        null_current = rng.multinomial(n_current, drawn, size=n_resamples).astype(np.float64)
        missed = null_reference == 0  # categories this resample never saw: their rows are unseen
        null_current[:, -1] += np.where(missed, null_current[:, :-1], 0.0).sum(axis=-1)
        null_current[:, :-1] = np.where(missed, 0.0, null_current[:, :-1])
        null_reference = np.concatenate([null_reference, np.zeros((n_resamples, 1))], axis=-1)
        return null_reference, null_current


def _cramers_v_batch(reference: FloatArray, current: FloatArray) -> FloatArray:
    """Cramér's V, √(χ² / N), of 2 × k tables (categories empty on both sides dropped)."""
    sizes = np.stack([reference.sum(axis=-1), current.sum(axis=-1)])[..., None]
    totals = sizes.sum(axis=0)
    observed = np.stack([reference, current])
    expected = sizes * (reference + current) / totals
    with np.errstate(divide="ignore", invalid="ignore"):
        cells = np.where(expected > 0, (observed - expected) ** 2 / expected, 0.0)
    return np.asarray(np.sqrt(cells.sum(axis=(0, -1)) / totals[..., 0]))


_CATEGORICAL_STATISTICS: Mapping[str, Callable[[FloatArray, FloatArray], FloatArray]] = (
    MappingProxyType({"chi_square": _cramers_v_batch, **_BINNED_STATISTICS})
)


# --- many tests at once ----------------------------------------------------


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
