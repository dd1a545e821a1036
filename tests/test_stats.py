"""Tests of steward.stats: every statistic against scipy, the resampled nulls, bins and seeds."""

from __future__ import annotations

import inspect
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import spatial, stats

from steward.data.drift import ks as steward_ks
from steward.data.drift import stats as steward_stats
from steward.data.drift.ks import ks_from_sorted
from steward.data.drift.stats import (
    CATEGORICAL_METHODS,
    NUMERIC_METHODS,
    PSI_EPSILON,
    CategoricalReference,
    NumericReference,
    adjust_p_values,
    bin_counts,
    chi_square_from_counts,
    hellinger_from_counts,
    jensen_shannon_from_counts,
    keyed_rng,
    psi_from_counts,
    quantile_edges,
    resampled_tests_from_counts,
    resolve_seed,
    wasserstein_from_counts,
)
from steward.errors import InvalidInputError

TOLERANCE = 1e-9

counts_pairs = st.integers(min_value=2, max_value=25).flatmap(
    lambda size: st.tuples(
        st.lists(st.integers(0, 500), min_size=size, max_size=size).filter(any),
        st.lists(st.integers(0, 500), min_size=size, max_size=size).filter(any),
    )
)


# --- the Kolmogorov–Smirnov test ------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_reference=st.integers(1, 400),
    n_current=st.integers(1, 400),
    discrete=st.booleans(),
)
def test_ks_from_sorted_equals_scipy_ks_2samp(
    seed: int, n_reference: int, n_current: int, discrete: bool
) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=n_reference)
    current = rng.normal(0.3, size=n_current)
    if discrete:  # ties
        reference, current = np.round(reference), np.round(current)
    result = ks_from_sorted(np.sort(reference), np.sort(current))
    expected = stats.ks_2samp(reference, current)
    assert result.statistic == pytest.approx(expected.statistic, abs=TOLERANCE)
    assert result.p_value == pytest.approx(expected.pvalue, abs=TOLERANCE)


@pytest.mark.parametrize(
    ("n_reference", "n_current", "shift", "decimals"),
    [
        (20_000, 15_000, 0.0, None),
        (20_000, 15_000, 0.05, None),
        (12_000, 30_000, 0.03, None),
        (60_000, 60_000, 0.02, None),
        (30_000, 20_000, 0.02, 1),
        (25_000, 40, 0.0, None),
    ],
)
def test_ks_from_sorted_equals_scipy_ks_2samp_on_large_samples(
    n_reference: int, n_current: int, shift: float, decimals: int | None
) -> None:
    rng = np.random.default_rng(n_reference + n_current)
    reference, current = rng.normal(size=n_reference), rng.normal(shift, size=n_current)
    if decimals is not None:
        reference, current = np.round(reference, decimals), np.round(current, decimals)
    result = ks_from_sorted(np.sort(reference), np.sort(current))
    expected = stats.ks_2samp(reference, current)
    assert result.statistic == pytest.approx(expected.statistic, abs=TOLERANCE)
    assert result.p_value == pytest.approx(expected.pvalue, abs=TOLERANCE)


@pytest.mark.parametrize("n", [141, 1_000, 20_000, 200_000])
def test_kolmogorov_tail_equals_scipy_kstwo_where_it_is_vectorized(n: int) -> None:
    for statistic in np.geomspace(1.0 / n, 0.99, 30):
        assert steward_ks._kolmogorov_sf(statistic, n) == pytest.approx(
            stats.kstwo.sf(statistic, n), abs=TOLERANCE
        )


# --- statistics on bin counts ---------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(counts_pairs)
def test_psi_from_counts_is_the_symmetric_kl_divergence_of_floored_shares(pair: tuple) -> None:
    reference, current = (np.array(counts, dtype=float) for counts in pair)

    def floored(counts: np.ndarray) -> np.ndarray:
        # Shares below half a row (or PSI_EPSILON) are raised to it; entropy() renormalizes.
        return np.maximum(counts / counts.sum(), max(PSI_EPSILON, 0.5 / counts.sum()))

    expected = stats.entropy(floored(current), floored(reference)) + stats.entropy(
        floored(reference), floored(current)
    )
    assert psi_from_counts(reference, current) == pytest.approx(expected, abs=TOLERANCE)


@settings(max_examples=80, deadline=None)
@given(counts_pairs)
def test_jensen_shannon_from_counts_equals_scipy_base_2(pair: tuple) -> None:
    reference, current = (np.array(counts, dtype=float) for counts in pair)
    expected = spatial.distance.jensenshannon(
        reference / reference.sum(), current / current.sum(), base=2
    )
    assert jensen_shannon_from_counts(reference, current) == pytest.approx(expected, abs=TOLERANCE)


@settings(max_examples=80, deadline=None)
@given(counts_pairs)
def test_hellinger_from_counts_equals_scipy_euclidean_of_root_shares(pair: tuple) -> None:
    reference, current = (np.array(counts, dtype=float) for counts in pair)
    expected = spatial.distance.euclidean(
        np.sqrt(reference / reference.sum()), np.sqrt(current / current.sum())
    ) / math.sqrt(2)
    assert hellinger_from_counts(reference, current) == pytest.approx(expected, abs=TOLERANCE)


@settings(max_examples=80, deadline=None)
@given(counts_pairs)
def test_chi_square_from_counts_equals_scipy_chi2_contingency(pair: tuple) -> None:
    table = np.array(pair, dtype=float)
    table = table[:, table.sum(axis=0) > 0]  # scipy rejects categories empty on both sides
    result = chi_square_from_counts(*pair)
    if table.shape[1] < 2:
        assert (result.statistic, result.p_value, result.dof) == (0.0, 1.0, 0)
        return
    expected = stats.chi2_contingency(table, correction=False)
    assert result.statistic == pytest.approx(expected.statistic, rel=TOLERANCE, abs=TOLERANCE)
    assert result.p_value == pytest.approx(expected.pvalue, abs=TOLERANCE)
    assert result.dof == expected.dof
    assert result.cramers_v == pytest.approx(math.sqrt(expected.statistic / table.sum()))


@settings(max_examples=80, deadline=None)
@given(counts_pairs, st.integers(0, 2**32 - 1))
def test_wasserstein_from_counts_equals_scipy_weighted_wasserstein(pair: tuple, seed: int) -> None:
    reference, current = (np.array(counts, dtype=float) for counts in pair)
    support = np.cumsum(np.random.default_rng(seed).uniform(0.1, 2.0, size=reference.size))
    expected = stats.wasserstein_distance(support, support, reference, current)
    assert wasserstein_from_counts(reference, current, support) == pytest.approx(
        expected, abs=TOLERANCE
    )


# --- bins -----------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_values=st.integers(1, 300),
    bins=st.integers(2, 20),
    decimals=st.sampled_from([None, 0, 1]),
)
def test_quantile_edges_equal_numpy_quantiles_with_ties_merged(
    seed: int, n_values: int, bins: int, decimals: int | None
) -> None:
    values = np.random.default_rng(seed).normal(size=n_values)
    if decimals is not None:
        values = np.round(values, decimals)
    # numpy's inverted CDF on positions k/bins that are exact in floating point.
    positions = np.array([Fraction(k, bins) for k in range(1, bins)])
    ordered = np.sort(values)
    expected = np.unique([ordered[math.ceil(q * n_values) - 1] for q in positions])
    np.testing.assert_array_equal(quantile_edges(ordered, bins), expected)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_values=st.integers(1, 300), bins=st.integers(2, 12))
def test_bin_counts_are_right_closed_and_count_every_value(
    seed: int, n_values: int, bins: int
) -> None:
    values = np.sort(np.round(np.random.default_rng(seed).normal(size=n_values), 1))
    edges = quantile_edges(values, bins)
    counts = bin_counts(values, edges)
    expected = np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)
    np.testing.assert_array_equal(counts, expected)
    assert counts.sum() == n_values


# --- references prepared once ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numeric_reference_statistics_equal_scipy_on_the_raw_samples(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference, current = rng.lognormal(size=3_000), rng.lognormal(0.1 * seed, size=2_000)
    results = NumericReference.from_values(reference).compare(np.sort(current))
    assert set(results) == set(NUMERIC_METHODS)
    ks = stats.ks_2samp(reference, current)
    assert results["ks"].statistic == pytest.approx(ks.statistic, abs=TOLERANCE)
    assert results["ks"].p_value == pytest.approx(ks.pvalue, abs=TOLERANCE)
    wasserstein = stats.wasserstein_distance(reference, current) / np.std(reference)
    assert results["wasserstein"].statistic == pytest.approx(wasserstein, rel=TOLERANCE)
    ordered = np.sort(reference)
    edges = np.unique(
        [ordered[math.ceil(Fraction(k, 10) * ordered.size) - 1] for k in range(1, 10)]
    )
    ref_counts, cur_counts = (
        np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)
        for values in (reference, current)
    )
    js = spatial.distance.jensenshannon(
        ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum(), base=2
    )
    assert results["jensen_shannon"].statistic == pytest.approx(js, abs=TOLERANCE)
    assert results["psi"].statistic == pytest.approx(
        psi_from_counts(ref_counts, cur_counts), abs=TOLERANCE
    )


def test_categorical_reference_puts_unseen_categories_in_one_bucket() -> None:
    reference = CategoricalReference.from_counts({"basic": 500, "plus": 300, "pro": 200})
    assert reference.categories == ("basic", "plus", "pro")
    current = {"pro": 150, "basic": 450, "team": 60, "free": 40, "plus": 300}
    results = reference.compare(current)
    assert set(results) == set(CATEGORICAL_METHODS)
    table = [[500, 300, 200, 0], [450, 300, 150, 100]]
    expected = stats.chi2_contingency(table, correction=False)
    # Never seen, never resampled: a tenth of the rows in new categories beats every draw.
    assert results["chi_square"].p_value == pytest.approx(1 / 1_001)
    assert results["chi_square"].statistic == pytest.approx(
        math.sqrt(expected.statistic / np.sum(table)), abs=TOLERANCE
    )
    assert results["hellinger"].statistic == pytest.approx(
        hellinger_from_counts(*table), abs=TOLERANCE
    )


def test_a_constant_reference_has_no_wasserstein_distance_and_says_what_to_use() -> None:
    reference = NumericReference.from_values(np.full(500, 0.25))
    assert reference.constant
    with pytest.raises(InvalidInputError, match="constant.*leave 'wasserstein' out"):
        reference.compare(np.sort(np.random.default_rng(3).uniform(size=500)), ["wasserstein"])
    assert reference.compare(np.full(10, 0.25), ["ks"])["ks"].statistic == 0.0


# --- resampled nulls ------------------------------------------------------------------------------


def test_resampled_p_values_are_one_plus_exceedances_over_one_plus_resamples() -> None:
    # A current sample exactly like the reference: every resample is at least as far, p = 1.
    same = resampled_tests_from_counts([400, 300, 300], [400, 300, 300], n_resamples=200)
    assert {result.p_value for result in same.values()} == {1.0}
    # A clear shift: no resample comes close, and p is the smallest possible, 1 / (B + 1).
    moved = resampled_tests_from_counts([400, 300, 300], [100, 300, 600], n_resamples=200)
    assert {result.p_value for result in moved.values()} == {1 / 201}


@pytest.mark.parametrize("method", ["psi", "wasserstein"])
def test_resampled_p_values_hold_their_level_without_drift(method: str) -> None:
    rng = np.random.default_rng(42)
    n_runs, alpha, below = 200, 0.05, 0
    for run in range(n_runs):
        reference = NumericReference.from_values(rng.normal(size=500))
        result = reference.compare(np.sort(rng.normal(size=400)), [method], rng=run)
        below += result[method].p_value < alpha
    assert below <= stats.binom.ppf(0.999, n_runs, alpha)


def test_the_same_generator_or_seed_reproduces_the_resampled_p_values() -> None:
    reference, current = [50, 40, 30, 20], [45, 45, 30, 25]
    first = resampled_tests_from_counts(reference, current, rng=7)
    assert first == resampled_tests_from_counts(reference, current, rng=np.random.default_rng(7))
    assert keyed_rng(3, "amount").random() == keyed_rng(3, "amount").random()
    assert keyed_rng(3, "amount").random() != keyed_rng(3, "score").random()


# --- many tests at once ---------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60))
def test_bh_adjusted_p_values_equal_scipy_false_discovery_control(p_values: list[float]) -> None:
    expected = stats.false_discovery_control(p_values, method="bh")
    np.testing.assert_allclose(adjust_p_values(p_values, "bh"), expected, rtol=0, atol=TOLERANCE)


def test_bonferroni_multiplies_by_the_number_of_tests_and_caps_at_one() -> None:
    p_values = np.array([0.001, 0.02, 0.3, 0.9])
    np.testing.assert_allclose(adjust_p_values(p_values, "bonferroni"), [0.004, 0.08, 1.0, 1.0])
    np.testing.assert_array_equal(adjust_p_values(p_values, "none"), p_values)


# --- bad input ------------------------------------------------------------------------------------


def test_bad_counts_and_samples_are_rejected_with_what_to_do() -> None:
    with pytest.raises(InvalidInputError, match="same bin order"):
        psi_from_counts([1, 2, 3], [1, 2])
    with pytest.raises(InvalidInputError, match="not all 0"):
        hellinger_from_counts([0, 0], [1, 2])
    with pytest.raises(InvalidInputError, match="not sorted"):
        ks_from_sorted([3.0, 1.0], [1.0, 2.0])
    with pytest.raises(InvalidInputError, match="finite numbers"):
        NumericReference.from_values([1.0, np.nan])
    with pytest.raises(InvalidInputError, match="strictly increasing"):
        bin_counts([1.0, 2.0], [2.0, 1.0])
    with pytest.raises(InvalidInputError, match="choose from"):
        resampled_tests_from_counts([1, 2], [2, 1], ["ks"])
    with pytest.raises(InvalidInputError, match="correction='holm' is unknown"):
        adjust_p_values([0.1], "holm")
    with pytest.raises(InvalidInputError, match="random_state must be an int"):
        resolve_seed(True)


def test_all_lists_every_public_name_of_the_module() -> None:
    public = {
        name
        for name, value in vars(steward_stats).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and getattr(value, "__module__", None) == steward_stats.__name__
    }
    assert public <= set(steward_stats.__all__)
    assert all(hasattr(steward_stats, name) for name in steward_stats.__all__)
