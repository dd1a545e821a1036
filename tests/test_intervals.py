"""Tests for steward.monitoring.metrics.intervals: the ROC AUC interval at small samples, Wilson."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats
from sklearn.metrics import roc_auc_score

from steward.errors import InvalidInputError
from steward.monitoring.metrics import delong, delong_logit, wilson

Z95 = float(stats.norm.ppf(0.975))


def logit_delong_by_hand(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """AUC from scikit-learn, DeLong's variance pair by pair, the t interval on the logit scale."""
    positives, negatives = scores[labels == 1], scores[labels == 0]
    m, n = len(positives), len(negatives)
    # DeLong et al. (1988): psi is 1 if the positive ranks higher, 1/2 on a tie.
    kernel = (positives[:, None] > negatives[None, :]) + 0.5 * (positives[:, None] == negatives)
    part_positive = kernel.mean(axis=1).var(ddof=1) / m
    part_negative = kernel.mean(axis=0).var(ddof=1) / n
    variance = part_positive + part_negative
    freedom = variance**2 / (part_positive**2 / (m - 1) + part_negative**2 / (n - 1))
    auc = roc_auc_score(labels, scores)
    half = stats.t.ppf(0.975, freedom) * np.sqrt(variance) / (auc * (1 - auc))
    return auc, special.expit(special.logit(auc) - half), special.expit(special.logit(auc) + half)


def binormal_window(
    rng: np.random.Generator, n_positive: int, n_negative: int, auc: float
) -> tuple[np.ndarray, np.ndarray]:
    """Negatives N(0, 1), positives N(d, 1) with d chosen so the true AUC, Phi(d / sqrt 2), is auc."""
    shift = np.sqrt(2.0) * stats.norm.ppf(auc)
    scores = np.r_[rng.normal(shift, 1.0, n_positive), rng.normal(0.0, 1.0, n_negative)]
    return scores, np.r_[np.ones(n_positive), np.zeros(n_negative)]


@pytest.mark.parametrize(("n_positive", "n_negative", "step"), [(10, 40, 0.0), (25, 100, 0.5)])
def test_logit_delong_is_the_logit_t_interval_on_pairwise_delong_variance(
    n_positive: int, n_negative: int, step: float
) -> None:
    rng = np.random.default_rng(n_positive)
    scores, labels = binormal_window(rng, n_positive, n_negative, 0.85)
    if step:  # scores on a grid, so there are ties within and across the classes
        scores = np.round(scores / step) * step
    auc, lower, upper = logit_delong_by_hand(scores, labels)
    interval = delong_logit(scores, labels, 0.95)
    assert interval.value == pytest.approx(auc, abs=1e-12)
    assert interval.lower == pytest.approx(lower, abs=1e-12)
    assert interval.upper == pytest.approx(upper, abs=1e-12)
    assert interval.method == "delong-logit"


def test_logit_delong_covers_the_true_auc_about_95_percent_at_10_and_25_positives() -> None:
    rng = np.random.default_rng(20)
    trials, true_auc = 1_000, 0.9
    band = 4 * np.sqrt(0.95 * 0.05 / trials)  # four binomial standard errors either side
    plain_covers = 0
    for n_positive in (10, 25):
        covers = 0
        for _ in range(trials):
            scores, labels = binormal_window(rng, n_positive, 4 * n_positive, true_auc)
            interval = delong_logit(scores, labels, 0.95)
            covers += interval.lower <= true_auc <= interval.upper
            if n_positive == 10:
                plain = delong(scores, labels, 0.95)
                plain_covers += plain.lower <= true_auc <= plain.upper
        assert abs(covers / trials - 0.95) <= band, n_positive
    # Plain DeLong, AUC ± z·SE, is too narrow at 10 positives: the reason delong_logit exists.
    assert plain_covers / trials < 0.95 - band


def test_a_perfect_auc_gets_wilsons_interval_over_the_smaller_class() -> None:
    labels = np.r_[np.ones(10), np.zeros(40)]
    separated = np.r_[np.linspace(2, 3, 10), np.linspace(0, 1, 40)]
    expected = stats.binomtest(10, 10).proportion_ci(0.95, "wilson")
    perfect, reversed_ = (
        delong_logit(separated, labels, 0.95),
        delong_logit(-separated, labels, 0.95),
    )
    assert (perfect.value, perfect.upper, perfect.method) == (1.0, 1.0, "wilson-auc")
    assert perfect.lower == pytest.approx(expected.low, abs=1e-12)
    assert (reversed_.value, reversed_.lower) == (0.0, 0.0)
    assert reversed_.upper == pytest.approx(1 - expected.low, abs=1e-12)


def test_scores_all_tied_or_a_single_positive_fall_back_to_the_wilson_bound() -> None:
    labels = np.r_[np.ones(10), np.zeros(40)]
    tied = delong_logit(np.full(50, 0.3), labels, 0.95)
    expected = stats.binomtest(5, 10).proportion_ci(0.95, "wilson")
    assert (tied.value, tied.method) == (0.5, "wilson-auc")
    assert (tied.lower, tied.upper) == pytest.approx((expected.low, expected.high), abs=1e-12)
    single = delong_logit(np.r_[0.9, np.linspace(0, 1, 40)], np.r_[1.0, np.zeros(40)], 0.95)
    assert single.method == "wilson-auc"
    assert single.lower < single.value < single.upper


def test_logit_delong_without_both_classes_says_what_it_got() -> None:
    with pytest.raises(InvalidInputError, match="0 positive and 3 negative"):
        delong_logit(np.array([0.1, 0.2, 0.3]), np.zeros(3), 0.95)


def test_logit_delong_agrees_with_plain_delong_on_a_large_sample() -> None:
    scores, labels = binormal_window(np.random.default_rng(3), 2_000, 8_000, 0.8)
    logit, plain = delong_logit(scores, labels, 0.95), delong(scores, labels, 0.95)
    # With thousands of each class the logit is near linear over the interval and t is z.
    assert logit.value == plain.value
    assert logit.lower == pytest.approx(plain.lower, abs=1e-3)
    assert logit.upper == pytest.approx(plain.upper, abs=1e-3)


@pytest.mark.parametrize("trials", [10, 25])
def test_wilson_covers_a_proportion_95_percent_on_average_at_small_n(trials: int) -> None:
    # Exact coverage (binomial sums over every outcome), averaged over true proportions 0.1-0.9.
    successes = np.arange(trials + 1)
    bounds = np.array([wilson(int(k), trials, 0.95, "none")[1:3] for k in successes])
    coverages = [
        stats.binom.pmf(successes, trials, share)[
            (bounds[:, 0] <= share) & (share <= bounds[:, 1])
        ].sum()
        for share in np.linspace(0.1, 0.9, 401)
    ]
    assert 0.94 <= np.mean(coverages) <= 0.96
