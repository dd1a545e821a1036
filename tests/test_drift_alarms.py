"""False alarms: drift checks stay quiet when nothing changed, on data the defaults were not tuned on.

The datasets are scikit-learn's bundled ones (read from the installed package, no network), split in
half at random; the reproductions are the three cases that alarmed before the nulls were fixed: a
long-tailed categorical column, a constant reference with one stray value, and a sparse column.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import datasets

from steward.data.drift import compare
from steward.data.drift.stats import (
    NOISE_QUANTILE,
    CategoricalReference,
    NumericReference,
    chi_square_from_counts,
    ks_noise,
    quantile_values,
)
from steward.data.profiles import DatasetProfile, compare_profiles, fit_binnings

LOADERS = {
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
    "diabetes": datasets.load_diabetes,
    "digits": datasets.load_digits,
}


def _halves(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(seed).permutation(len(frame))
    half = len(frame) // 2
    return frame.iloc[order[:half]], frame.iloc[order[half:]]


def _profile_check(reference: pd.DataFrame, current: pd.DataFrame, seed: int):
    binnings = fit_binnings(reference)
    return compare_profiles(
        DatasetProfile.from_frame(reference, binnings),
        DatasetProfile.from_frame(current, binnings),
        random_state=seed,
    )


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_random_halves_of_a_real_dataset_raise_no_alarm_in_either_mode(name: str) -> None:
    frame = LOADERS[name](as_frame=True).frame
    for seed in range(4):
        reference, current = _halves(frame, seed)
        exact = compare(reference, current, random_state=seed)
        assert not exact.alarmed, (name, seed, exact.to_text())
        profile = _profile_check(reference, current, seed)
        assert not profile.alarmed, (name, seed, profile.to_text())


def _zipf_column(rng: np.random.Generator, levels: int, rows: int) -> np.ndarray:
    shares = 1.0 / np.arange(1, levels + 1) ** 1.1
    labels = np.array([f"L{index}" for index in range(levels)], dtype=object)
    return rng.choice(labels, p=shares / shares.sum(), size=rows)


def test_a_long_tailed_categorical_column_is_quiet_under_no_drift() -> None:
    # 200 levels, 500 rows a side: many levels appear on one side only. Before the null could
    # produce unseen categories, 99% of such checks alarmed.
    alarms, significant = 0, 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        reference = pd.DataFrame({"city": _zipf_column(rng, 200, 500)})
        current = pd.DataFrame({"city": _zipf_column(rng, 200, 500)})
        report = compare(reference, current, random_state=seed)
        assert report.columns["city"].n_unseen > 0  # the case at issue: unseen levels each time
        alarms += report.alarmed
        significant += any(row.significant for row in report.results)
    assert alarms == 0
    assert significant <= 5  # p-values are valid: about alpha of the checks, not all of them


def test_a_new_category_in_five_percent_of_rows_still_alarms_on_a_long_tailed_column() -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"city": _zipf_column(rng, 200, 5_000)})
    values = _zipf_column(rng, 200, 5_000)
    values[rng.random(5_000) < 0.05] = "Atlantis"
    report = compare(reference, pd.DataFrame({"city": values}))
    assert report.alarmed_columns == ["city"]
    assert report.columns["city"].unseen_categories["Atlantis"] > 200


def test_a_constant_reference_with_one_stray_value_is_judged_by_the_share_of_new_values() -> None:
    reference = pd.DataFrame({"pixel": np.zeros(500)})
    current = pd.DataFrame({"pixel": np.r_[np.zeros(499), 16.0]})
    for report in (compare(reference, current), _profile_check(reference, current, 0)):
        assert not report.alarmed, report.to_text()
        assert [row.method for row in report.results] == ["ks"]
        assert all(math.isfinite(row.statistic) for row in report.results)
        assert report.results[0].statistic == pytest.approx(1 / 500)
        assert "1 of 500 current values (0.2%) differ" in report.columns["pixel"].note
    # A real change in the same column: a quarter of the rows now hold other values.
    moved = pd.DataFrame({"pixel": np.r_[np.zeros(375), np.full(125, 16.0)]})
    assert compare(reference, moved).alarmed_columns == ["pixel"]


def test_a_sparse_column_is_quiet_under_no_drift() -> None:
    # 98% zeros, like the border pixels of the digits images; small windows often hold a
    # reference with only a few other values.
    alarms = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        frames = [
            pd.DataFrame({"x": np.where(rng.random(300) < 0.98, 0, rng.integers(1, 17, 300))})
            for _ in range(2)
        ]
        alarms += compare(*frames, random_state=seed).alarmed
    assert alarms == 0


# --- the pieces, checked against scipy --------------------------------------------------------------


def test_quantile_values_are_the_inverted_cdf_in_exact_arithmetic() -> None:
    rng = np.random.default_rng(0)
    for size in (1, 2, 7, 100, 1_001, 3_000):
        values = np.sort(rng.lognormal(size=size))
        for bins in (2, 10, 100):
            # The smallest value whose share at or below it reaches k/bins (k = 0: the minimum).
            expected = [values[max(-(-k * size // bins) - 1, 0)] for k in range(bins + 1)]
            np.testing.assert_array_equal(quantile_values(values, bins), expected)
            # numpy's inverted_cdf agrees wherever k/bins * size is not a rounding away from an
            # integer (its float positions are what this function avoids).
            positions = np.arange(bins + 1) / bins
            exact = np.abs(positions * size - np.round(positions * size)) > 1e-9
            numpy_values = np.quantile(values, positions, method="inverted_cdf")
            np.testing.assert_array_equal(quantile_values(values, bins)[exact], numpy_values[exact])


def test_deciles_are_a_subset_of_percentiles_exactly() -> None:
    values = np.sort(np.random.default_rng(1).lognormal(size=12_345))
    np.testing.assert_array_equal(quantile_values(values, 10), quantile_values(values, 100)[::10])


def test_ks_noise_is_the_no_drift_quantile_of_scipys_statistic() -> None:
    rng = np.random.default_rng(2)
    draws = [
        stats.ks_2samp(rng.normal(size=400), rng.normal(size=600)).statistic for _ in range(4_000)
    ]
    empirical = float(np.quantile(draws, NOISE_QUANTILE))
    assert ks_noise(400, 600) == pytest.approx(empirical, rel=0.06)


def test_categorical_statistic_is_scipys_cramers_v_and_its_null_is_calibrated() -> None:
    rng = np.random.default_rng(4)
    shares = np.array([0.5, 0.3, 0.15, 0.05])
    p_values = []
    for trial in range(300):
        reference = rng.multinomial(800, shares)
        current = rng.multinomial(600, shares)
        categorical = CategoricalReference.from_counts(dict(enumerate(reference.tolist())))
        aligned = [int(current[category]) for category in categorical.categories]
        result = categorical.compare_counts(aligned, 0, ["chi_square"], rng=trial)["chi_square"]
        table = np.vstack([reference, current])
        chi2 = stats.chi2_contingency(table, correction=False).statistic
        assert result.statistic == pytest.approx(math.sqrt(chi2 / table.sum()))
        assert result.statistic == pytest.approx(
            chi_square_from_counts(reference, current).cramers_v
        )
        p_values.append(result.p_value)
    # On a dense table the resampled p-values agree with the asymptotic ones: about 5% below 0.05.
    assert 0.02 <= np.mean(np.array(p_values) < 0.05) <= 0.09


def test_wasserstein_statistic_is_scipys_distance_in_reference_deviations() -> None:
    rng = np.random.default_rng(5)
    reference_values, current_values = rng.lognormal(size=700), rng.lognormal(0.2, size=900)
    reference = NumericReference.from_values(reference_values)
    result = reference.compare(np.sort(current_values), ["wasserstein"])["wasserstein"]
    expected = stats.wasserstein_distance(reference_values, current_values) / np.std(
        reference_values
    )
    assert result.statistic == pytest.approx(expected)
    assert result.p_value < 0.01 and result.noise > 0


def test_the_wasserstein_null_is_calibrated_on_a_heavy_tailed_column() -> None:
    rng = np.random.default_rng(6)
    p_values, beyond_noise = [], 0
    for trial in range(300):
        reference = NumericReference.from_values(rng.standard_t(2, size=300))
        current = np.sort(rng.standard_t(2, size=300))
        result = reference.compare(current, ["wasserstein"], rng=trial)["wasserstein"]
        p_values.append(result.p_value)
        beyond_noise += result.statistic > result.noise
    assert 0.02 <= np.mean(np.array(p_values) < 0.05) <= 0.09
    assert beyond_noise <= 9  # the noise is the 99th percentile: about 3 of 300


def test_wasserstein_on_a_constant_reference_is_refused_with_a_way_out() -> None:
    reference = NumericReference.from_values(np.full(50, 2.0))
    with pytest.raises(Exception, match="reference is constant.*leave 'wasserstein' out"):
        reference.compare(np.array([2.0, 3.0]), ["wasserstein"])
