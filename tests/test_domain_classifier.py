"""Tests of steward.domain_classifier: its AUC and p-value against scikit-learn and scipy, its level
without drift, and what it catches that per-column tests miss."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from steward.data.drift import classifier as domain_classifier
from steward.data.drift import compare
from steward.data.drift.classifier import ALL_COLUMNS, domain_classifier_test
from steward.errors import InvalidInputError
from tests.test_drift import mixed_frames, null_frames

TOLERANCE = 1e-9


def test_domain_classifier_catches_a_joint_shift_the_marginals_miss() -> None:
    rng = np.random.default_rng(23)
    x = rng.normal(size=(2, 1_500))
    reference = pd.DataFrame({"x": x[0], "y": x[1]})
    correlated = rng.normal(size=1_500)
    current = pd.DataFrame({"x": correlated, "y": correlated + rng.normal(0, 0.1, 1_500)})
    current["y"] /= current["y"].std()
    result = domain_classifier_test(reference, current)
    assert result.auc == pytest.approx(roc_auc_score(result.labels, result.scores), abs=TOLERANCE)
    expected = stats.mannwhitneyu(
        result.scores[result.labels == 1], result.scores[result.labels == 0], alternative="greater"
    )
    assert result.p_value == pytest.approx(expected.pvalue, abs=TOLERANCE)
    report = compare(reference, current, methods=["ks", "domain_classifier"])
    alarmed = {(row.column, row.method) for row in report.results if row.alarm}
    assert alarmed == {(ALL_COLUMNS, "domain_classifier")}


def test_domain_classifier_p_values_hold_their_level_without_drift() -> None:
    n_runs, alpha = 12, 0.05
    below = 0
    for seed in range(n_runs):
        reference, current = null_frames(100 + seed, 400, 400)
        result = domain_classifier_test(
            reference.iloc[:, ::4], current.iloc[:, ::4], random_state=seed
        )
        below += result.p_value < alpha
    assert below <= stats.binom.ppf(0.999, n_runs, alpha)


def test_domain_classifier_accepts_logistic_regression_with_categories() -> None:
    reference, current = mixed_frames(24, 600, 600, shift=1.0)
    result = domain_classifier_test(reference, current, classifier="logistic_regression")
    assert result.auc > 0.6
    assert result.auc == pytest.approx(roc_auc_score(result.labels, result.scores), abs=TOLERANCE)


def test_domain_classifier_samples_at_most_max_rows_a_side() -> None:
    reference, current = mixed_frames(28, 900, 700, shift=0.5)
    result = domain_classifier_test(reference, current, max_rows=500)
    assert (result.n_reference, result.n_current) == (500, 500)
    assert result.labels.tolist() == [0] * 500 + [1] * 500
    assert result.scores.shape == (1_000,)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"classifier": "forest"}, "classifier='forest' is unknown"),
        ({"n_folds": 200}, "needs at least n_folds=200 rows per side"),
        ({"columns": ["nope"]}, "not in the reference data"),
    ],
)
def test_bad_settings_are_rejected_with_what_to_do(options: dict, message: str) -> None:
    reference, current = mixed_frames(29, 100, 100)
    with pytest.raises(InvalidInputError, match=message):
        domain_classifier_test(reference, current, **options)


def test_all_lists_every_public_name_of_the_module() -> None:
    public = {
        name
        for name, value in vars(domain_classifier).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and getattr(value, "__module__", None) == domain_classifier.__name__
    }
    assert public <= set(domain_classifier.__all__)
    assert all(hasattr(domain_classifier, name) for name in domain_classifier.__all__)
