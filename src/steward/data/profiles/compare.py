"""Profile-mode drift: two profiles of a column, or two windows of profiles, compared.

:func:`drift_from_profiles` gives one method's statistic on two profiles with a bound on its error;
:func:`compare_profiles` runs every method on every column of two windows and adds p-values and
noise levels from nulls resampled from the reference's bins, and alarms, in a ``DriftReport``
built as exact mode (``steward.data.drift``) builds it. ``docs/profiles.md`` derives the bounds.

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
    with_constant_columns,
)
from steward.data.drift.report import (
    ColumnPlot,
    ColumnSummary,
    DriftReport,
    Outcome,
    build_report,
    categorical_summary,
    constant_note,
)
from steward.data.drift.stats import (
    CategoricalReference,
    chi_square_from_counts,
    empirical_p_value,
    hellinger_from_counts,
    jensen_shannon_from_counts,
    keyed_rng,
    noise_level,
    null_counts,
    psi_from_counts,
    resampled_tests_from_counts,
    resolve_seed,
    scaled_wasserstein,
)
from steward.data.profiles.column import ColumnProfile, check_same_binning, merge_profiles
from steward.data.profiles.dataset import DatasetProfile
from steward.errors import InvalidInputError

__all__ = ["PROFILE_METHODS", "ProfileDrift", "compare_profiles", "drift_from_profiles"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

PROFILE_METHODS: Final = ("ks", "wasserstein", "psi", "jensen_shannon", "hellinger", "chi_square")


@dataclass(frozen=True)
class ProfileDrift:
    """A drift statistic computed from two profiles, with ``|exact − statistic| <= bound``.

    ``edges`` are the inner bin edges a binned method used (numeric columns); ``p_value`` is set
    where it follows exactly from the counts (chi-square), and by :func:`compare_profiles` for
    every method, with ``noise``: the statistic's 99.9th percentile under no drift at these sizes.

    >>> result = ProfileDrift("ks", statistic=0.2, bound=0.005)
    >>> round(result.lower, 3), round(result.upper, 3)
    (0.195, 0.205)
    """

    method: str
    statistic: float
    bound: float
    p_value: float | None = None
    edges: tuple[float, ...] = ()
    noise: float = 0.0

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


class _BeyondTheBinning:
    """The reference's categories past the binning's ``max_categories``, as one category."""

    def __repr__(self) -> str:
        return "(categories beyond the binning)"


_BEYOND: Final = _BeyondTheBinning()


def drift_from_profiles(
    reference: ColumnProfile, current: ColumnProfile, method: str, *, bins: int | None = 10
) -> ProfileDrift:
    """Drift between two profiles of one column, from their bins, with a bound on the error.

    ``psi``, ``jensen_shannon``, ``hellinger`` and ``chi_square`` (Cramér's V, with the
    theoretical p-value) are computed on bins by ``steward.data.drift.stats``, so they equal exact
    mode on raw rows binned the same way (bound 0). For a numeric column the fine bins are grouped
    into ``bins`` coarse bins closing at the binning's quantiles k/bins (``None`` keeps the fine
    bins): exact mode's own edges when the reference is the data the binning was fitted on.
    ``ks`` and ``wasserstein`` (in reference standard deviations) are bracketed from the bin
    counts and bin sums: the exact statistic lies within ``bound`` of the reported midpoint, and
    the bound is 0 wherever F − G cannot change sign within a bin (Wasserstein) or no bin holds
    values strictly inside it on a side that has mass there (KS: discrete columns).
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
        return _wasserstein_drift(reference, current)
    reference_counts, current_counts, edges = _comparable_counts(reference, current, bins)
    if method == "chi_square":
        result = chi_square_from_counts(reference_counts, current_counts)
        return ProfileDrift(method, result.cramers_v, 0.0, result.p_value, edges)
    return ProfileDrift(
        method, _BINNED_METHODS[method](reference_counts, current_counts), 0.0, edges=edges
    )


# --- bins: coarse groups of the fine bins, and the categories as exact mode tables them --------------


def _comparable_counts(
    reference: ColumnProfile, current: ColumnProfile, bins: int | None
) -> tuple[FloatArray, FloatArray, tuple[float, ...]]:
    if reference.kind == "categorical":
        seen, aligned, unseen = _category_table(reference, current)
        return np.append(seen.counts, 0.0), np.append(aligned, float(unseen)), ()
    fine_reference = reference.bin_counts.astype(np.float64)
    fine_current = current.bin_counts.astype(np.float64)
    edges = reference.binning.edges_
    coarse = None if bins is None else reference.binning.coarse_edges(bins)
    if coarse is not None:
        # Each coarse edge is a fine edge: the fine bin that closes there ends a group.
        last = np.searchsorted(edges, coarse)
    elif bins is None or bins >= fine_reference.size or fine_reference.sum() == 0:
        return fine_reference, fine_current, tuple(edges.tolist())
    else:  # a binning stored without its quantiles: groups of about equal reference mass
        cumulative = np.cumsum(fine_reference) / fine_reference.sum()
        last = np.unique(np.searchsorted(cumulative, np.arange(1, bins) / bins, side="left"))
        last = last[last < fine_reference.size - 1]
    starts = np.concatenate([[0], last + 1])
    return (
        np.add.reduceat(fine_reference, starts),
        np.add.reduceat(fine_current, starts),
        tuple(edges[last].tolist()),
    )


def _category_table(
    reference: ColumnProfile, current: ColumnProfile
) -> tuple[CategoricalReference, FloatArray, int]:
    """The reference as exact mode prepares it, the current counts aligned with its categories,
    and the current rows in categories the reference never held.

    A binning category the reference window does not hold is one it never saw, as in exact mode.
    Reference rows past the binning's ``max_categories`` (``unseen_count``) are one more category
    on both sides; the current rows in it cannot then be told from new categories."""
    reference_counts = reference.category_counts
    current_counts = current.category_counts
    unseen = current.unseen_count
    if reference.unseen_count:
        reference_counts[_BEYOND] = reference.unseen_count  # type: ignore[index]
        current_counts[_BEYOND] = current.unseen_count  # type: ignore[index]
        unseen = 0
    held = {category: count for category, count in reference_counts.items() if count > 0}
    unseen += sum(count for category, count in current_counts.items() if category not in held)
    seen = CategoricalReference.from_counts(held)
    aligned = np.array([current_counts[category] for category in seen.categories], np.float64)
    return seen, aligned, unseen


# --- KS and Wasserstein from bin counts and bin sums -----------------------------------------------
#
# Bins are right-closed, so both ECDFs F (reference) and G (current) are known exactly at every
# edge. Inside bin i, F rises by at most its share pᵢ above its value at the bin's left end, and
# not at all when the bin's values all sit on its right edge (its bin sum, measured from that edge,
# is exactly 0); likewise G with qᵢ. So F − G stays within [leftᵢ − qᵢ*, leftᵢ + pᵢ*] inside the
# bin (pᵢ* = 0 when the reference cannot rise there), where leftᵢ is F − G at the left end. The
# functions below take counts with bins on the last axis, so that one call scores the observed
# profiles and another every resampled pair of the null, by the same arithmetic.


def _shares(counts: FloatArray) -> FloatArray:
    return counts / counts.sum(axis=-1, keepdims=True)


def _left_and_right(
    reference_counts: FloatArray, current_counts: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """F − G at each bin's left end and at its right edge."""
    # Counts summed before dividing, as exact mode does: equal KS statistics to the last bit.
    right = np.cumsum(reference_counts, axis=-1) / reference_counts.sum(
        axis=-1, keepdims=True
    ) - np.cumsum(current_counts, axis=-1) / current_counts.sum(axis=-1, keepdims=True)
    left = np.concatenate([np.zeros_like(right[..., :1]), right[..., :-1]], axis=-1)
    return left, right


def _may_rise_inside(profile: ColumnProfile) -> BoolArray:
    """Per bin, whether the profile may hold values strictly inside it, short of its right edge.

    Without bin sums (profiles stored before they were kept), any bin with values may."""
    inside = profile.bin_counts > 0
    if profile.bin_sums is not None:  # the last bin, open above, has no right edge to sit on
        inside[:-1] &= profile.bin_sums[:-1] != 0
    return np.asarray(inside)


def _bin_widths(edges: FloatArray, low: float, high: float) -> FloatArray:
    """Each bin's width within [low, high] (0 for a bin that holds one value at most there)."""
    # Outside [low, high] both CDFs are 0 or 1, so the open end bins close at the extremes.
    return np.diff(np.clip(np.concatenate([[low], edges, [high]]), low, high))


def _observed_range(reference: ColumnProfile, current: ColumnProfile) -> tuple[float, float]:
    assert reference.minimum is not None and current.minimum is not None  # both have values
    assert reference.maximum is not None and current.maximum is not None
    return min(reference.minimum, current.minimum), max(reference.maximum, current.maximum)


def _ks_range(
    reference_counts: FloatArray,
    current_counts: FloatArray,
    widths: FloatArray,
    inside: tuple[BoolArray, BoolArray],
) -> FloatArray:
    """The least and greatest KS statistic the bins allow, stacked on a new first axis.

    ``inside`` holds, per side, whether it may hold values strictly inside each bin."""
    p, q = _shares(reference_counts), _shares(current_counts)
    left, right = _left_and_right(reference_counts, current_counts)
    lower = np.max(np.abs(right), axis=-1)
    rise_p, rise_q = np.where(inside[0], p, 0.0), np.where(inside[1], q, 0.0)
    # A bin of zero width within the observed extremes holds one value, where F − G only steps.
    excursion = np.where(widths > 0, np.maximum(left + rise_p, rise_q - left), 0.0)
    upper = np.minimum(1.0, np.max(excursion, axis=-1))
    return np.stack([lower, np.maximum(upper, lower)])


def _ks_drift(reference: ColumnProfile, current: ColumnProfile) -> ProfileDrift:
    widths = _bin_widths(reference.binning.edges_, *_observed_range(reference, current))
    lower, upper = _ks_range(
        reference.bin_counts.astype(np.float64),
        current.bin_counts.astype(np.float64),
        widths,
        (_may_rise_inside(reference), _may_rise_inside(current)),
    )
    return ProfileDrift("ks", float(lower + upper) / 2.0, float(upper - lower) / 2.0)


def _wasserstein_drift(reference: ColumnProfile, current: ColumnProfile) -> ProfileDrift:
    scale = reference.std
    if _is_constant(reference) or not scale > 0:
        raise InvalidInputError(
            f"the reference profile is constant (every value {reference.minimum!r}), so a "
            "distance in its standard deviations is undefined; leave 'wasserstein' out and read "
            "the share of other values from 'ks' (compare_profiles does so by itself)"
        )
    low, high = _observed_range(reference, current)
    if reference.bin_sums is None or current.bin_sums is None:
        widths = _bin_widths(reference.binning.edges_, low, high)
        estimate, least, most = _interpolated_wasserstein(
            reference.bin_counts.astype(np.float64), current.bin_counts.astype(np.float64), widths
        ).tolist()
        bound = max(estimate - least, most - estimate, 0.0)
        return ProfileDrift("wasserstein", estimate / scale, bound / scale)
    least, most = _wasserstein_bracket(reference, current, low, high)
    return ProfileDrift("wasserstein", (least + most) / 2.0 / scale, (most - least) / 2.0 / scale)


def _wasserstein_bracket(
    reference: ColumnProfile, current: ColumnProfile, low: float, high: float
) -> tuple[float, float]:
    """The least and greatest W1 (not yet scaled) that the bin counts and bin sums allow.

    Over a bin (a, b] clipped to [low, high], ∫ (F(x) − F(a)) dx = Σ over its values (b − x) / n,
    which the bin sum gives exactly; so I = ∫ (F − G) over each bin is exact, and ∫ |F − G| is at
    least |I|. It is exactly |I| where F − G cannot change sign within the bin; elsewhere it is at
    most what the rise of F and G within the bin allows (``_excursions``)."""
    bounds = np.clip(np.concatenate([[low], reference.binning.edges_, [high]]), low, high)
    widths, ends = np.diff(bounds), bounds[1:]
    anchors = reference.binning.anchors
    assert reference.bin_sums is not None and current.bin_sums is not None  # the caller checks
    n_reference, n_current = float(reference.finite_count), float(current.finite_count)
    p, q = reference.bin_counts / n_reference, current.bin_counts / n_current
    left, _ = _left_and_right(
        reference.bin_counts.astype(np.float64), current.bin_counts.astype(np.float64)
    )
    # ∫ over the bin of each CDF's rise above its value at the bin's left end: p (b − mean).
    areas = (
        p * (ends - anchors) - reference.bin_sums / n_reference,
        q * (ends - anchors) - current.bin_sums / n_current,
    )
    integral = left * widths + areas[0] - areas[1]
    rises = (
        np.where(_may_rise_inside(reference), p, 0.0),
        np.where(_may_rise_inside(current), q, 0.0),
    )
    above, below = _excursions(left, widths, rises, areas)
    # ∫|D| = ∫D⁺ + ∫D⁻, and I = ∫D⁺ − ∫D⁻.
    most = np.minimum.reduce([above + below, integral + 2.0 * below, 2.0 * above - integral])
    least = np.abs(integral)
    return float(np.sum(least)), float(np.sum(np.maximum(most, least)))


def _excursions(
    left: FloatArray,
    widths: FloatArray,
    rises: tuple[FloatArray, FloatArray],
    areas: tuple[FloatArray, FloatArray],
) -> tuple[FloatArray, FloatArray]:
    """Upper bounds on ∫D⁺ and ∫D⁻ over each bin, D = F − G = left + f − g.

    Within a bin f rises from 0 to at most ``rises[0]`` (0 when it cannot rise inside), with
    ∫f = ``areas[0]``; g likewise. Each bound replaces one of f and g by its extreme (0 or its
    rise), which leaves a convex integrand in the other: for a given ∫, that is largest when the
    other is a single step (all its mass at its mean, after which it holds the length ``∫/rise``
    of the bin). The least of these bounds, and of the width times the largest value of D⁺ (or
    D⁻), is kept."""
    rise_f, rise_g = rises
    with np.errstate(invalid="ignore", divide="ignore"):
        after_f = np.where(rise_f > 0, np.clip(areas[0] / rise_f, 0.0, widths), 0.0)
        after_g = np.where(rise_g > 0, np.clip(areas[1] / rise_g, 0.0, widths), 0.0)

    def step_integral(level: FloatArray, drop: FloatArray, after: FloatArray) -> FloatArray:
        # ∫ max(0, level − step) where the step rises by drop at the last ``after`` of the bin.
        return (widths - after) * np.maximum(0.0, level) + after * np.maximum(0.0, level - drop)

    def rising_integral(level: FloatArray, rise: FloatArray, after: FloatArray) -> FloatArray:
        # ∫ max(0, level + step) for the same kind of step.
        return (widths - after) * np.maximum(0.0, level) + after * np.maximum(0.0, level + rise)

    above = np.minimum.reduce(
        [
            widths * np.maximum(0.0, left + rise_f),
            step_integral(left + rise_f, rise_g, after_g),  # f at its top, g a step
            rising_integral(left, rise_f, after_f),  # g at 0, f a step
        ]
    )
    below = np.minimum.reduce(
        [
            widths * np.maximum(0.0, rise_g - left),
            step_integral(rise_g - left, rise_f, after_f),  # g at its top, f a step
            rising_integral(-left, rise_g, after_g),  # f at 0, g a step
        ]
    )
    return above, below


def _interpolated_wasserstein(
    reference_counts: FloatArray, current_counts: FloatArray, widths: FloatArray
) -> FloatArray:
    """Without bin sums: the W1 of the CDFs interpolated linearly within bins, and the least and
    greatest W1 the counts allow, stacked on a new first axis."""
    p, q = _shares(reference_counts), _shares(current_counts)
    left, right = _left_and_right(reference_counts, current_counts)
    floor, ceiling = left - q, left + p
    most = widths * np.maximum(np.abs(floor), np.abs(ceiling))
    least = widths * np.where(floor * ceiling <= 0, 0.0, np.minimum(np.abs(floor), np.abs(ceiling)))
    # The linear interpolation of F − G stays within [floor, ceiling]; its integral of |·|:
    spread = np.abs(left) + np.abs(right)
    crossing = (left * left + right * right) / (2.0 * np.where(spread > 0, spread, 1.0))
    estimate = np.sum(widths * np.where(left * right >= 0, spread / 2.0, crossing), axis=-1)
    return np.stack([estimate, np.sum(least, axis=-1), np.sum(most, axis=-1)])


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

    Every (column, method) gets the statistic of :func:`drift_from_profiles`, a p-value and a
    noise level (the statistic's 99.9th percentile under no drift) from a resampled null.
    Categorical columns go through exact mode's own test (``CategoricalReference.compare_counts``),
    so their results equal exact mode's. PSI, Jensen–Shannon and Hellinger of numeric columns are
    scored on ``bins`` coarse bins by exact mode's ``resampled_tests_from_counts``; KS on draws
    from the reference's fine bins; Wasserstein, as exact mode, on random splits of the pooled
    fine bins of both windows.
    The p-values are adjusted together (``correction``) and a pair alarms when it is significant
    and its statistic exceeds the floor plus its error bound plus its noise: the report's
    ``threshold``, so ``alarm`` is ``significant and statistic > threshold`` as in exact mode. A
    numeric column constant in the reference is tested by KS alone, as in exact mode, and its
    summary says so. ``columns`` defaults to every column of ``reference``; the other settings are
    those of ``steward.data.drift.compare`` (the domain classifier needs rows, so it has no
    profile mode).

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
    per_column = _methods_per_column(reference, names, methods)
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


def _methods_per_column(
    reference: DatasetProfile, names: Sequence[str], methods: Sequence[str] | None
) -> dict[str, tuple[str, ...]]:
    kinds = {name: reference[name].kind for name in names}
    per_column, domain = resolve_methods(kinds, methods)
    if domain:
        raise InvalidInputError(
            "the domain classifier needs raw rows, which profiles do not keep; leave "
            "'domain_classifier' out of methods, or run steward.data.drift.compare on the rows"
        )
    constant = [name for name in per_column if _is_constant(reference[name])]
    return with_constant_columns(per_column, constant)


def _is_constant(profile: ColumnProfile) -> bool:
    return (
        profile.kind == "numeric"
        and profile.finite_count > 0
        and (profile.minimum == profile.maximum)
    )


def _profile_outcomes(
    reference: DatasetProfile,
    current: DatasetProfile,
    per_column: Mapping[str, Sequence[str]],
    floors_by_test: Mapping[tuple[str, str], float],
    settings: tuple[int, int, int],
) -> tuple[list[Outcome], dict[tuple[str, str], float]]:
    """Each test's outcome, and the floor it must clear beyond its noise: the floor plus the
    statistic's error bound.

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
            outcomes.append(
                Outcome(name, result.method, result.statistic, result.p_value, result.noise)
            )
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
    """Each method's statistic, error bound, resampled p-value and noise."""
    if reference.kind == "categorical":
        seen, aligned, unseen = _category_table(reference, current)
        tested = seen.compare_counts(aligned, unseen, methods, n_resamples=n_resamples, rng=rng)
        return [
            ProfileDrift(method, result.statistic, 0.0, result.p_value, noise=result.noise)
            for method, result in tested.items()
        ]
    # As in exact mode, the binned methods draw from a generator of their own, so their nulls
    # (and p-values) equal exact mode's whatever the other methods draw.
    binned_rng, other_rng = rng.spawn(2)
    found: dict[str, ProfileDrift] = {}
    if "wasserstein" in methods:
        found["wasserstein"] = _wasserstein_test(reference, current, n_resamples, other_rng)
    binned = [method for method in methods if method in _BINNED_METHODS]
    if binned:
        reference_counts, current_counts, edges = _comparable_counts(reference, current, bins)
        tested = resampled_tests_from_counts(
            reference_counts, current_counts, binned, n_resamples=n_resamples, rng=binned_rng
        )
        for method, result in tested.items():
            found[method] = ProfileDrift(
                method, result.statistic, 0.0, result.p_value, edges, result.noise
            )
    if "ks" in methods:
        found["ks"] = _ks_test(reference, current, n_resamples, other_rng)
    return [found[method] for method in methods]


def _ks_test(
    reference: ColumnProfile, current: ColumnProfile, n_resamples: int, rng: np.random.Generator
) -> ProfileDrift:
    """KS with its p-value and noise from a null drawn on the fine bins, each draw scored by the
    bracket's midpoint as the observed statistic is."""
    observed = _ks_drift(reference, current)
    null_reference, null_current = null_counts(
        reference.bin_counts.astype(np.float64), current.finite_count, rng, n_resamples
    )
    assert reference.minimum is not None and reference.maximum is not None  # it has values
    # Draws from the reference lie within its extremes, and a bin whose reference values all sit
    # on its right edge gives draws that do too.
    widths = _bin_widths(reference.binning.edges_, reference.minimum, reference.maximum)
    inside = _may_rise_inside(reference)
    null = np.mean(_ks_range(null_reference, null_current, widths, (inside, inside)), axis=0)
    p_value = empirical_p_value(null, observed.statistic)
    return dataclasses.replace(observed, p_value=p_value, noise=noise_level(null))


def _wasserstein_test(
    reference: ColumnProfile, current: ColumnProfile, n_resamples: int, rng: np.random.Generator
) -> ProfileDrift:
    """Wasserstein with its p-value and noise (in reference standard deviations).

    With bin sums, as exact mode: under no drift both windows come from one distribution, so the
    null splits the pooled rows at random into a reference and a current of the observed sizes
    (multinomial draws from the pooled fine-bin shares, each bin's mass at its pooled mean), and
    scores each split's distance over the standard deviation of its own reference side; values
    that only the current holds (beyond the reference's extremes, say) are in the pool, so the
    null reaches them too. The observed pair is scored on the same bins, and the part of the
    exact distance those bins do not resolve is added to the noise. Without bin sums, the
    interpolated distance is tested against draws from the reference's fine bins."""
    observed = _wasserstein_drift(reference, current)
    pooled = _pooled_bins(reference, current)
    if pooled is None:
        reference_counts = reference.bin_counts.astype(np.float64)
        widths = _bin_widths(reference.binning.edges_, *_observed_range(reference, current))
        pair = reference_counts, current.bin_counts.astype(np.float64)
        distance = float(_interpolated_wasserstein(*pair, widths)[0])
        null = null_counts(reference_counts, current.finite_count, rng, n_resamples)
        scores = _interpolated_wasserstein(*null, widths)[0] / reference.std
        distance /= reference.std
        unresolved = 0.0
    else:
        reference_counts, current_counts, support, second_moment = pooled
        distance = float(
            scaled_wasserstein(reference_counts, current_counts, support, second_moment)
        )
        shares = (reference_counts + current_counts) / (reference_counts + current_counts).sum()
        null_reference, null_current = (
            rng.multinomial(size, shares, size=n_resamples).astype(np.float64)
            for size in (reference.finite_count, current.finite_count)
        )
        scores = scaled_wasserstein(null_reference, null_current, support, second_moment)
        unresolved = max(observed.lower - distance, 0.0)
    noise = noise_level(scores) + unresolved
    return dataclasses.replace(observed, p_value=empirical_p_value(scores, distance), noise=noise)


def _pooled_bins(
    reference: ColumnProfile, current: ColumnProfile
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray] | None:
    """Reference and current counts of the fine bins either side holds, each bin's pooled mean
    and second moment; None without bin sums.

    Profiles keep no per-bin spread. The pooled rows' within-bin variance (their variance less
    that of the bin means) is exact, and each bin's variance is at most (b − mean)(mean − a) over
    its observed extent (a, b] (Bhatia–Davis); the within-bin variance is shared out in proportion
    to that, so the wide bins of a tail carry the spread that moves a split's deviation."""
    if reference.bin_sums is None or current.bin_sums is None:
        return None
    anchors = reference.binning.anchors
    reference_counts = reference.bin_counts.astype(np.float64)
    current_counts = current.bin_counts.astype(np.float64)
    counts = reference_counts + current_counts
    totals = anchors * counts + reference.bin_sums + current.bin_sums
    used = counts > 0
    support = totals[used] / counts[used]
    shares = counts[used] / counts.sum()
    between = float(shares @ (support * support) - (shares @ support) ** 2)
    within = max(merge_profiles([reference, current]).variance - between, 0.0)
    low, high = _observed_range(reference, current)
    bounds = np.clip(np.concatenate([[low], reference.binning.edges_, [high]]), low, high)
    most = np.maximum((bounds[1:][used] - support) * (support - bounds[:-1][used]), 0.0)
    room = float(shares @ most)
    spread = most * min(within / room, 1.0) if room > 0 else np.zeros_like(support)
    return reference_counts[used], current_counts[used], support, support * support + spread


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
        note=_constant_note(reference, current) if _is_constant(reference) else "",
    )


def _constant_note(reference: ColumnProfile, current: ColumnProfile) -> str:
    """How a column constant in the reference was judged, with the share of current values that
    differ from the constant (exact when the binning has a bin holding the constant alone)."""
    constant = float(reference.minimum)  # type: ignore[arg-type]  # a constant has values
    edges = current.binning.edges_
    index = int(np.searchsorted(edges, constant, side="left"))
    at_most = int(current.bin_counts[index])  # the bin holding the constant, and maybe others
    on_edge = index < edges.size and edges[index] == constant
    bin_alone = on_edge and index > 0 and edges[index - 1] == np.nextafter(constant, -np.inf)
    all_on_edge = on_edge and current.bin_sums is not None and current.bin_sums[index] == 0
    alone = at_most == 0 or bin_alone or all_on_edge
    other = current.finite_count - at_most
    return constant_note(constant, other, current.finite_count, exact=alone)


def _categorical_profile_summary(
    name: str, reference: ColumnProfile, current: ColumnProfile
) -> ColumnSummary:
    # Categories outside the binning are known by the frequent-items sketch only (estimates); when
    # the reference had none, every such current row is one the reference never saw, exactly.
    held = {category: count for category, count in reference.category_counts.items() if count}
    seen = CategoricalReference.from_counts({**dict(reference.unseen_values()), **held})
    counts = {**dict(current.unseen_values()), **current.category_counts}
    summary = categorical_summary(name, seen, reference.null_count, counts, current.null_count)
    exact_unseen = _category_table(reference, current)[2] if not reference.unseen_count else None
    return dataclasses.replace(
        summary,
        n_reference=_compared_rows(reference),
        n_current=_compared_rows(current),
        n_unseen=summary.n_unseen if exact_unseen is None else exact_unseen,
    )
