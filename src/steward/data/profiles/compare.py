"""Profile-mode drift: two profiles of a column, or two windows of profiles, compared.

:func:`drift_from_profiles` gives one method's statistic on two profiles with a bound on its error;
:func:`compare_profiles` runs every method on every column of two windows and adds p-values from
nulls resampled from the reference's bins and alarms, in a ``DriftReport`` built as exact mode
(``steward.data.drift``) builds it. ``docs/profiles.md`` derives the bounds.

Example::

    >>> from steward.data.profiles import Binning
    >>> binning = Binning().fit([0.0, 1.0, 2.0, 3.0])
    >>> same = ColumnProfile.from_values([0.5, 1.5, 2.5], binning)
    >>> drift_from_profiles(same, same, "psi").statistic
    0.0
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from steward.data.drift.options import (
    check_settings,
    resample_count,
    resolve_floors,
    resolve_methods,
)
from steward.data.drift.report import (
    ColumnPlot,
    ColumnSummary,
    DriftReport,
    Outcome,
    build_report,
    categorical_summary,
)
from steward.data.drift.stats import (
    CategoricalReference,
    chi_square_from_counts,
    empirical_p_value,
    hellinger_from_counts,
    jensen_shannon_from_counts,
    keyed_rng,
    null_counts,
    psi_from_counts,
    resampled_tests_from_counts,
    resolve_seed,
)
from steward.data.profiles.column import ColumnProfile, check_same_binning
from steward.data.profiles.dataset import DatasetProfile
from steward.errors import InvalidInputError

__all__ = ["PROFILE_METHODS", "ProfileDrift", "compare_profiles", "drift_from_profiles"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PROFILE_METHODS: Final = ("ks", "wasserstein", "psi", "jensen_shannon", "hellinger", "chi_square")


@dataclass(frozen=True)
class ProfileDrift:
    """A drift statistic computed from two profiles, with ``|exact − statistic| <= bound``.

    ``edges`` are the inner bin edges a binned method used (numeric columns); ``p_value`` is set
    where it follows exactly from the counts (chi-square). :func:`compare_profiles` gives every
    method a p-value.

    >>> result = ProfileDrift("ks", statistic=0.2, bound=0.005)
    >>> round(result.lower, 3), round(result.upper, 3)
    (0.195, 0.205)
    """

    method: str
    statistic: float
    bound: float
    p_value: float | None = None
    edges: tuple[float, ...] = ()

    @property
    def lower(self) -> float:
        """The least value the exact statistic can take."""
        return max(self.statistic - self.bound, 0.0)

    @property
    def upper(self) -> float:
        """The greatest value the exact statistic can take."""
        return self.statistic + self.bound


_BINNED_METHODS: Final = {
    "psi": psi_from_counts,
    "jensen_shannon": jensen_shannon_from_counts,
    "hellinger": hellinger_from_counts,
}


def drift_from_profiles(
    reference: ColumnProfile, current: ColumnProfile, method: str, *, bins: int | None = 10
) -> ProfileDrift:
    """Drift between two profiles of one column, from their bins, with a bound on the error.

    ``psi``, ``jensen_shannon``, ``hellinger`` and ``chi_square`` (Cramér's V, with its p-value)
    are computed on bins by ``steward.data.drift``, so they equal exact mode on raw rows binned the same
    way (bound 0). For a numeric column the fine bins are first merged into ``bins`` groups of
    about equal reference mass (``None`` keeps them), as exact mode uses 10 reference-quantile bins.
    ``ks`` is bracketed by the binned CDFs: the exact statistic lies within ``bound`` of the
    midpoint, and ``bound`` is at most half the largest bin mass. ``wasserstein`` (in reference
    standard deviations) interpolates the CDFs linearly within bins; its bound is at most the
    bin-width-weighted mass, with the end bins closed by the observed minimum and maximum.
    :func:`compare_profiles` runs every method on every column and adds p-values and alarms.

    >>> import numpy as np
    >>> from steward.data.profiles import Binning
    >>> rng = np.random.default_rng(0)
    >>> binning = Binning().fit(rng.normal(size=5_000))
    >>> reference = ColumnProfile.from_values(rng.normal(size=5_000), binning)
    >>> current = ColumnProfile.from_values(rng.normal(0.5, size=5_000), binning)
    >>> result = drift_from_profiles(reference, current, "ks")
    >>> round(result.statistic, 2), result.bound < 0.01
    (0.19, True)
    """
    if method not in PROFILE_METHODS:
        raise InvalidInputError(
            f"method {method!r} has no profile mode; choose one of {', '.join(PROFILE_METHODS)}"
        )
    check_same_binning(reference, current, "compare")
    if method in ("ks", "wasserstein"):
        reference.require_kind("numeric", f"method {method!r}")
        for side, profile in (("reference", reference), ("current", current)):
            if not profile.finite_count:
                raise InvalidInputError(
                    f"the {side} profile has no finite values; {method} needs rows on both sides"
                )
        if method == "ks":
            return _ks_drift(reference, current)
        return _wasserstein_drift(reference, current)[0]
    reference_counts, current_counts, edges = _comparable_counts(reference, current, bins)
    if method == "chi_square":
        result = chi_square_from_counts(reference_counts, current_counts)
        return ProfileDrift(method, result.cramers_v, 0.0, result.p_value, edges)
    return ProfileDrift(
        method, _BINNED_METHODS[method](reference_counts, current_counts), 0.0, edges=edges
    )


def _comparable_counts(
    reference: ColumnProfile, current: ColumnProfile, bins: int | None
) -> tuple[IntArray, IntArray, tuple[float, ...]]:
    if reference.kind == "categorical":  # unseen values share one extra bucket, as in exact mode
        return (
            np.append(reference.bin_counts, reference.unseen_count),
            np.append(current.bin_counts, current.unseen_count),
            (),
        )
    fine_reference, fine_current = reference.bin_counts, current.bin_counts
    edges = reference.binning.edges_
    if bins is None or bins >= fine_reference.size or fine_reference.sum() == 0:
        return fine_reference, fine_current, tuple(edges.tolist())
    # A coarse bin closes after the fine bin where the reference's cumulative share reaches j/bins.
    cumulative = np.cumsum(fine_reference) / fine_reference.sum()
    last = np.unique(np.searchsorted(cumulative, np.arange(1, bins) / bins, side="left"))
    last = last[last < fine_reference.size - 1]
    starts = np.concatenate([[0], last + 1])
    return (
        np.add.reduceat(fine_reference, starts),
        np.add.reduceat(fine_current, starts),
        tuple(edges[last].tolist()),
    )


# The two functions below take bin counts with bins on the last axis, so that one call scores the
# observed profiles and another every resampled pair of the null, by the same arithmetic.


def _ks_range(
    reference_counts: FloatArray, current_counts: FloatArray, widths: FloatArray
) -> FloatArray:
    """The least and greatest KS statistic the bin counts allow, stacked on a new first axis."""
    # At every edge both ECDFs are known exactly (bins are right-closed), so the largest gap there
    # is a lower bound. Inside bin i, F rises by at most p_i and G by at most q_i above their values
    # at the bin's left edge, so F − G stays below gap_i + p_i and above gap_i − q_i. A bin of zero
    # width within the observed [min, max] holds one value at most, so F − G only steps there.
    p = reference_counts / reference_counts.sum(axis=-1, keepdims=True)
    q = current_counts / current_counts.sum(axis=-1, keepdims=True)
    right = np.cumsum(p, axis=-1) - np.cumsum(q, axis=-1)  # F − G at each bin's right edge
    left = np.concatenate([np.zeros_like(right[..., :1]), right[..., :-1]], axis=-1)
    lower = np.max(np.abs(right), axis=-1)
    inside = np.where(widths > 0, np.maximum(left + p, q - left), 0.0)
    upper = np.minimum(1.0, np.max(inside, axis=-1))
    return np.stack([lower, np.maximum(upper, lower)])


def _wasserstein_range(
    reference_counts: FloatArray, current_counts: FloatArray, widths: FloatArray
) -> FloatArray:
    """The interpolated W1 and the least and greatest W1 the counts allow, stacked on a new axis."""
    p = reference_counts / reference_counts.sum(axis=-1, keepdims=True)
    q = current_counts / current_counts.sum(axis=-1, keepdims=True)
    right = np.cumsum(p, axis=-1) - np.cumsum(q, axis=-1)
    left = np.concatenate([np.zeros_like(right[..., :1]), right[..., :-1]], axis=-1)
    floor, ceiling = left - q, left + p  # F − G within each bin, as for KS
    most = widths * np.maximum(np.abs(floor), np.abs(ceiling))
    least = widths * np.where(floor * ceiling <= 0, 0.0, np.minimum(np.abs(floor), np.abs(ceiling)))
    # The linear interpolation of F − G stays within [floor, ceiling]; its integral of |·|:
    spread = np.abs(left) + np.abs(right)
    crossing = (left * left + right * right) / (2.0 * np.where(spread > 0, spread, 1.0))
    estimate = np.sum(widths * np.where(left * right >= 0, spread / 2.0, crossing), axis=-1)
    return np.stack([estimate, np.sum(least, axis=-1), np.sum(most, axis=-1)])


def _ks_drift(reference: ColumnProfile, current: ColumnProfile) -> ProfileDrift:
    lower, upper = _ks_range(
        reference.bin_counts.astype(np.float64),
        current.bin_counts.astype(np.float64),
        _bin_widths(reference, current),
    )
    return ProfileDrift("ks", float(lower + upper) / 2.0, float(upper - lower) / 2.0)


def _bin_widths(reference: ColumnProfile, current: ColumnProfile) -> FloatArray:
    """Each bin's width within the observed [min, max] of both sides (0 when it holds one value)."""
    assert reference.minimum is not None and current.minimum is not None  # both have values
    assert reference.maximum is not None and current.maximum is not None
    low = min(reference.minimum, current.minimum)
    high = max(reference.maximum, current.maximum)
    # Outside [low, high] both CDFs are 0 or 1, so the open end bins close at the extremes.
    bounds = np.clip(np.concatenate([[low], reference.binning.edges_, [high]]), low, high)
    return np.diff(bounds)


def _wasserstein_drift(
    reference: ColumnProfile, current: ColumnProfile
) -> tuple[ProfileDrift, FloatArray]:
    """The result, and the bin widths its null must be scored with."""
    widths = _bin_widths(reference, current)
    estimate, least, most = _wasserstein_range(
        reference.bin_counts.astype(np.float64), current.bin_counts.astype(np.float64), widths
    ).tolist()
    bound = max(estimate - least, most - estimate, 0.0)
    scale = reference.std
    if scale > 0:
        return ProfileDrift("wasserstein", estimate / scale, bound / scale), widths
    # A constant reference: any movement is infinitely many of its (zero) standard deviations. The
    # extremes are exact, so whether the current moved (a value other than the constant) is known
    # exactly, and so is the statistic.
    moved = reference.minimum != current.minimum or reference.maximum != current.maximum
    return ProfileDrift("wasserstein", math.inf if moved else 0.0, 0.0), widths


# --- profile-mode comparison of whole windows ------------------------------------------------------


def compare_profiles(
    reference: DatasetProfile,
    current: DatasetProfile,
    *,
    columns: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    floors: Mapping[str, float | Mapping[str, float]] | None = None,
    alpha: float = 0.05,
    correction: str = "bh",
    random_state: int | None = 0,
    bins: int = 10,
    n_resamples: int | None = None,
) -> DriftReport:
    """Compare two windows of profiles column by column, as ``steward.data.drift.compare`` compares rows.

    Every (column, method) gets the statistic of :func:`drift_from_profiles` and a p-value from a
    null resampled from the reference's bin frequencies alone: reference and current bin counts of
    the two windows' sizes drawn from them, scored by the same arithmetic as the observed pair (KS
    and Wasserstein on the fine bins, PSI, Jensen–Shannon and Hellinger on ``bins`` coarse bins);
    chi-square keeps its theoretical p-value. The p-values are adjusted together (``correction``)
    and a pair alarms when it is significant and its statistic minus its error bound still exceeds
    the floor: the report's ``threshold`` is the floor plus the bound, so ``alarm`` is
    ``significant and statistic > threshold`` as in exact mode, and where profile mode alarms the
    exact statistic exceeds the floor too (profile mode is conservative). ``columns`` defaults to
    every column of ``reference``; the other settings are those of ``steward.data.drift.compare`` (the
    domain classifier needs rows, so it has no profile mode).

    >>> import numpy as np, pandas as pd
    >>> from steward.data.profiles import fit_binnings
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"amount": rng.normal(size=2_000), "plan": rng.choice(["a", "b"], 2_000)})
    >>> binnings = fit_binnings(frame)
    >>> later = frame.assign(amount=rng.normal(1.0, size=2_000))
    >>> report = compare_profiles(
    ...     DatasetProfile.from_frame(frame, binnings), DatasetProfile.from_frame(later, binnings))
    >>> report.alarmed_columns
    ['amount']
    """
    check_settings(alpha, correction, bins)
    names = _compared_columns(reference, current, columns)
    kinds = {name: reference[name].kind for name in names}
    per_column, domain = resolve_methods(kinds, methods)
    if domain:
        raise InvalidInputError(
            "the domain classifier needs raw rows, which profiles do not keep; leave "
            "'domain_classifier' out of methods, or run steward.data.drift.compare on the rows"
        )
    floors_by_test = resolve_floors(floors, per_column, False)
    resamples = resample_count(n_resamples, len(floors_by_test), alpha)
    seed = resolve_seed(random_state)
    outcomes, thresholds = _profile_outcomes(
        reference, current, per_column, floors_by_test, (bins, resamples, seed)
    )
    summaries = {
        name: _profile_summary(name, reference[name], current[name], bins) for name in per_column
    }
    return build_report(outcomes, summaries, thresholds, (alpha, correction, resamples), skipped={})


def _profile_outcomes(
    reference: DatasetProfile,
    current: DatasetProfile,
    per_column: Mapping[str, Sequence[str]],
    floors_by_test: Mapping[tuple[str, str], float],
    settings: tuple[int, int, int],
) -> tuple[list[Outcome], dict[tuple[str, str], float]]:
    """Each test's outcome, and its threshold: the floor plus the statistic's error bound.

    ``settings`` is (bins, n_resamples, seed); each column draws its nulls from its own keyed rng.
    """
    bins, n_resamples, seed = settings
    outcomes: list[Outcome] = []
    thresholds: dict[tuple[str, str], float] = {}
    for name, column_methods in per_column.items():
        pair = reference[name], current[name]
        rng = keyed_rng(seed, name)
        for result in _profile_tests(*pair, column_methods, bins, n_resamples, rng):
            assert result.p_value is not None  # _profile_tests sets every p-value
            outcomes.append(Outcome(name, result.method, result.statistic, result.p_value))
            thresholds[(name, result.method)] = floors_by_test[(name, result.method)] + result.bound
    return outcomes, thresholds


def _compared_columns(
    reference: DatasetProfile, current: DatasetProfile, columns: Sequence[str] | None
) -> list[str]:
    names = list(reference.profiles) if columns is None else list(dict.fromkeys(columns))
    if not names:
        raise InvalidInputError("there are no columns to compare; profile at least one column")
    for side, window in (("reference", reference), ("current", current)):
        missing = [name for name in names if name not in window.profiles]
        if missing:
            raise InvalidInputError(
                f"columns {missing} have no profile in the {side} window (it has "
                f"{window.columns[:20]}); profile them on both sides, or leave them out of columns"
            )
    for name in names:
        first, second = reference.profiles[name], current.profiles[name]
        try:
            check_same_binning(first, second, "compare")
        except InvalidInputError as error:
            raise InvalidInputError(f"column {name!r}: {error}") from None
        for side, profile in (("reference", first), ("current", second)):
            if _compared_rows(profile) == 0:
                raise InvalidInputError(
                    f"column {name!r} has no values to compare in the {side} window "
                    f"({profile.count} rows, {profile.null_count} missing); drift needs rows on "
                    "both sides, so widen the window or leave the column out"
                )
    return names


def _compared_rows(profile: ColumnProfile) -> int:
    if profile.kind == "numeric":
        return profile.finite_count
    return int(profile.bin_counts.sum()) + profile.unseen_count


def _profile_tests(
    reference: ColumnProfile,
    current: ColumnProfile,
    methods: Sequence[str],
    bins: int,
    n_resamples: int,
    rng: np.random.Generator,
) -> list[ProfileDrift]:
    """Each method's statistic, error bound and resampled (or, for chi-square, theoretical) p-value."""
    found: dict[str, ProfileDrift] = {}
    reference_counts, current_counts, edges = _comparable_counts(reference, current, bins)
    binned = [method for method in methods if method in _BINNED_METHODS]
    if binned:
        tested = resampled_tests_from_counts(
            reference_counts, current_counts, binned, n_resamples=n_resamples, rng=rng
        )
        for method, result in tested.items():
            found[method] = ProfileDrift(method, result.statistic, 0.0, result.p_value, edges)
    if "chi_square" in methods:
        found["chi_square"] = drift_from_profiles(reference, current, "chi_square")
    if "ks" in methods or "wasserstein" in methods:
        found.update(_cdf_tests(reference, current, methods, n_resamples, rng))
    return [found[method] for method in methods]


def _cdf_tests(
    reference: ColumnProfile,
    current: ColumnProfile,
    methods: Sequence[str],
    n_resamples: int,
    rng: np.random.Generator,
) -> dict[str, ProfileDrift]:
    """KS and Wasserstein with p-values from one null drawn on the fine bins."""
    null_reference, null_current = null_counts(
        reference.bin_counts.astype(np.float64), current.finite_count, rng, n_resamples
    )
    found = {}
    if "ks" in methods:
        observed = _ks_drift(reference, current)
        widths = _bin_widths(reference, current)
        null = np.mean(_ks_range(null_reference, null_current, widths), axis=0)  # the midpoints
        p_value = empirical_p_value(null, observed.statistic)
        found["ks"] = dataclasses.replace(observed, p_value=p_value)
    if "wasserstein" in methods:
        observed, widths = _wasserstein_drift(reference, current)
        if reference.std > 0:
            null = _wasserstein_range(null_reference, null_current, widths)[0] / reference.std
            p_value = empirical_p_value(null, observed.statistic)
        else:  # draws from a constant reference never move, so a moved current beats them all
            p_value = 1.0 if observed.statistic == 0 else 1.0 / (1.0 + n_resamples)
        found["wasserstein"] = dataclasses.replace(observed, p_value=p_value)
    return found


def _profile_summary(
    name: str, reference: ColumnProfile, current: ColumnProfile, bins: int
) -> ColumnSummary:
    """Sizes, missing values (null, NaN or infinite: rows not compared) and a plot per column."""
    if reference.kind == "categorical":
        return _categorical_profile_summary(name, reference, current)
    reference_counts, current_counts, edges = _comparable_counts(reference, current, bins)
    labels = [f"≤ {edges[0]:.4g}"] if edges else ["all"]
    labels += [f"({left:.4g}, {right:.4g}]" for left, right in itertools.pairwise(edges)]
    labels += [f"> {edges[-1]:.4g}"] if edges else []
    return ColumnSummary(
        column=name,
        kind="numeric",
        n_reference=reference.finite_count,
        n_current=current.finite_count,
        n_missing_reference=reference.null_count + reference.infinite_count,
        n_missing_current=current.null_count + current.infinite_count,
        plot=ColumnPlot(
            labels=tuple(labels),
            reference_shares=tuple((reference_counts / reference_counts.sum()).tolist()),
            current_shares=tuple((current_counts / current_counts.sum()).tolist()),
        ),
    )


def _categorical_profile_summary(
    name: str, reference: ColumnProfile, current: ColumnProfile
) -> ColumnSummary:
    # Categories outside the binning are known by the frequent-items sketch only (estimates); when
    # the reference had none, every such current row is one the reference never saw, exactly.
    seen = CategoricalReference.from_counts(
        {**dict(reference.unseen_values()), **reference.category_counts}
    )
    counts = {**dict(current.unseen_values()), **current.category_counts}
    summary = categorical_summary(name, seen, reference.null_count, counts, current.null_count)
    exact_unseen = current.unseen_count if reference.unseen_count == 0 else summary.n_unseen
    return dataclasses.replace(
        summary,
        n_reference=_compared_rows(reference),
        n_current=_compared_rows(current),
        n_unseen=exact_unseen,
    )
